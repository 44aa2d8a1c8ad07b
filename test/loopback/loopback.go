// Package loopback gives tests addresses on 127.0.0.1 that behave like a
// trace collector that is down or hung.
package loopback

import (
	"net"
	"sync"
	"testing"
)

// Closed returns a loopback address nothing listens on: connections are
// refused at once (a collector that is down).
func Closed(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// Hung returns a loopback address that accepts connections and never reads
// or answers, like a collector stuck behind a full queue or a firewall
// that drops after the handshake: the case only a deadline gets out of.
// The listener and its connections are closed at cleanup.
func Hung(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}
