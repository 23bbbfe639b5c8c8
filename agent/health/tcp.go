package health

import (
	"context"
	"net"
	"strconv"
	"time"
)

// probeTCP is healthy when host:port accepts a connection.
func probeTCP(ctx context.Context, host string, port int, timeout time.Duration) error {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	what := "connect " + addr
	pctx := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return timeoutCause(pctx, ctx, what, timeout, err)
	}
	_ = c.Close()
	return nil
}
