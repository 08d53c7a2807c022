package echo

import "io"

var ioEOF = io.EOF

// copyCount drains r and counts the bytes, for streamed request bodies.
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
