#!/usr/bin/perl
# A tiny in-memory key-value cache on a unix socket, one command a line: "SET key value",
# "GET key", "PING". Tells the supervisor it is alive over sd_notify: WATCHDOG=1 at half the
# period it sets in WATCHDOG_USEC. Perl with its base modules only (perl-base).
use strict;
use warnings;
use IO::Select;
use IO::Socket::UNIX;
use Socket qw(SOCK_DGRAM SOCK_STREAM);

my $path = shift // "./cache.sock";
$| = 1;
unlink $path;    # left behind by a run that was killed
my $server = IO::Socket::UNIX->new(Type => SOCK_STREAM, Local => $path, Listen => 16)
  or die "cannot listen on $path: $!\n";
print "cache listening on $path\n";

# sd_notify(3): one datagram to $NOTIFY_SOCKET (a path, or @name for an abstract socket).
sub notify {
    my ($message) = @_;
    my $to = $ENV{NOTIFY_SOCKET} or return;
    $to =~ s/^@/\0/;
    my $socket = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Peer => $to) or return warn "sd_notify: $!\n";
    $socket->send($message);
}

my $every = ($ENV{WATCHDOG_USEC} // 10_000_000) / 2_000_000;
my $next_watchdog = 0;
my (%store, %pending);
my $select = IO::Select->new($server);
while (1) {
    if (time >= $next_watchdog) { notify("WATCHDOG=1"); $next_watchdog = time + $every; }
    for my $fh ($select->can_read(1)) {
        if ($fh == $server) { my $client = $server->accept; $select->add($client) if $client; next; }
        my $n = sysread($fh, my $chunk, 4096);
        if (!$n) { $select->remove($fh); delete $pending{$fh}; close $fh; next; }
        $pending{$fh} .= $chunk;
        while ($pending{$fh} =~ s/^(.*?)\r?\n//) {
            my ($command, $key, $value) = split ' ', $1, 3;
            $command = uc($command // "");
            my $reply = $command eq "PING" ? "PONG"
              : $command eq "SET" && defined $value ? do { $store{$key} = $value; "OK" }
              : $command eq "GET" && defined $key ? (exists $store{$key} ? "VALUE $store{$key}" : "NONE")
              : "ERR expected SET key value, GET key or PING";
            syswrite($fh, "$reply\n");
        }
    }
}
