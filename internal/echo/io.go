package echo

import "io"

var ioEOF = io.EOF

func copyCount(r io.Reader) (int, error) {
	buf := make([]byte, 64<<10)
	total := 0
	for {
		n, err := r.Read(buf)
		total += n
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Server builds an echo server with streaming request bodies so that large
// uploads are counted, not buffered.
func Server(name string) *fasthttpServer {
	return newServer(name)
}
