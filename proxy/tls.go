package proxy

import (
	"strconv"
	"time"

	"github.com/weirgw/weir/sdk"
)

// plainHTTPMsg is the 400 answer to a plain-HTTP request on a TLS port,
// nginx's wording.
const plainHTTPMsg = "plain HTTP request was sent to an HTTPS port"

// PlainHTTPAnswer is the whole cleartext response a TLS listener writes to
// a client that spoke plain HTTP to it (package tlsfront): 400 with the
// gateway's JSON error body, then the connection closes. The TLS listener
// serves no request on such a connection, so it is written raw rather
// than through fasthttp.
func PlainHTTPAnswer() []byte {
	var id [36]byte
	body := append([]byte(`{"status":400,"error":`), sdk.AppendJSONString(nil, plainHTTPMsg)...)
	body = append(body, `,"request_id":`...)
	body = sdk.AppendJSONString(body, string(appendRequestID(id[:0])))
	body = append(body, '}')
	b := []byte("HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nConnection: close\r\nDate: ")
	b = time.Now().UTC().AppendFormat(b, "Mon, 02 Jan 2006 15:04:05 GMT") // RFC 9110 §5.6.7
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}
