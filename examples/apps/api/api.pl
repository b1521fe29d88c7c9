#!/usr/bin/perl
# A small HTTP/1.0 API on 127.0.0.1:$PORT: GET /health answers "ok", GET /time the time (UTC).
# Perl with its base modules only (perl-base: on every Debian and Ubuntu system).
use strict;
use warnings;
use IO::Socket::INET;

my $port = $ENV{PORT} // 18481;
my $server = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $port, Listen => 16, ReuseAddr => 1)
  or die "cannot listen on 127.0.0.1:$port: $!\n";
$| = 1;
print "api listening on 127.0.0.1:$port\n";

while (1) {
    my $client = $server->accept or next;
    # A client that sends nothing (a TCP check connects and closes) must not hold the server.
    my $request = eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm 5;
        my $line = <$client> // "";
        while (my $header = <$client>) { last if $header =~ /^\r?\n$/ }
        alarm 0;
        $line;
    } // "";
    alarm 0;
    if ($request ne "") {
        my ($status, $body) = $request =~ m{^GET /health[ ?]} ? ("200 OK", "ok\n")
          : $request =~ m{^GET /time[ ?]} ? ("200 OK", scalar(gmtime) . "\n")
          : ("404 Not Found", "not found\n");
        print $client "HTTP/1.0 $status\r\nContent-Type: text/plain\r\nContent-Length: " . length($body) . "\r\nConnection: close\r\n\r\n$body";
    }
    close $client;
}
