package fusedio

import "net"

// Detach hands the connection over to a user that reads and writes it
// from two goroutines at once (an HTTP/2 server after a hijack): held
// bytes are written and recorded deadlines applied, and the TCP
// connection itself is returned, whose Close still takes the connection
// out of its Listener's set. The Conn must not be read or written after.
func (c *Conn) Detach() (net.Conn, error) {
	if err := c.Flush(); err != nil {
		return nil, err
	}
	c.applyRead()
	c.applyWrite()
	return detached{Conn: c.Conn, c: c}, nil
}

type detached struct {
	net.Conn
	c *Conn
}

func (d detached) Close() error {
	d.c.gone()
	return d.Conn.Close()
}

// NetConn is the connection c reads and writes.
func (c *Conn) NetConn() net.Conn { return c.Conn }
