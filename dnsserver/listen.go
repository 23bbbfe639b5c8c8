package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenAttempts bounds the retries when port 0 picked a UDP port whose
// TCP twin is taken.
const listenAttempts = 20

// listen binds n UDP sockets sharing one port (SO_REUSEPORT: the kernel
// spreads queries over them) and a TCP listener on the same port. With port
// 0 the first UDP socket picks the port, and a port whose TCP side is busy
// is given up for another.
func listen(ctx context.Context, addr string, n int) ([]*net.UDPConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	for try := 1; ; try++ {
		udp, tcp, err := listenOnce(ctx, host, port, n)
		if err == nil {
			return udp, tcp, nil
		}
		if port != "0" || !errors.Is(err, syscall.EADDRINUSE) || try == listenAttempts {
			return nil, nil, err
		}
	}
}

func listenOnce(ctx context.Context, host, port string, n int) ([]*net.UDPConn, net.Listener, error) {
	lc := net.ListenConfig{Control: reusePort}
	var conns []*net.UDPConn
	fail := func(err error) ([]*net.UDPConn, net.Listener, error) {
		for _, c := range conns {
			c.Close()
		}
		return nil, nil, err
	}
	addr := net.JoinHostPort(host, port)
	for i := range n {
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			return fail(fmt.Errorf("listen udp %s: %w", addr, err))
		}
		conns = append(conns, pc.(*net.UDPConn))
		if i == 0 {
			addr = net.JoinHostPort(host, strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port))
		}
	}
	tcp, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fail(fmt.Errorf("listen tcp %s: %w", addr, err))
	}
	return conns, tcp, nil
}

// reusePort sets SO_REUSEPORT on a socket before it binds.
func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("SO_REUSEPORT: %w", serr)
	}
	return nil
}
