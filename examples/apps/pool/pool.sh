#!/bin/sh
# A pre-forking server in miniature, shaped like nginx or postgres: the master (the service's
# main process) keeps two workers; SIGHUP replaces them, SIGTERM stops them and then the master.
pids=""
start_workers() {
  for i in 1 2; do sleep 100000 & pids="$pids $!"; done
  echo "master $$: workers$pids (umask $(umask), open files $(ulimit -n))"
}
stop_workers() { kill $pids 2>/dev/null; wait; pids=""; }
trap 'stop_workers; start_workers' HUP
trap 'stop_workers; echo "master $$: stopped"; exit 0' TERM
start_workers
while :; do wait; done
