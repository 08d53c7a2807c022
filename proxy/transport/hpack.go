package transport

// HPACK without a dynamic table (RFC 7541): every field a literal
// "without indexing", its name from the static table when it is there,
// its strings raw (no Huffman coding, whose CPU a loopback or LAN hop
// does not repay). Nothing is kept between header blocks, so a call
// encodes its block before taking the connection's lock, and the
// upstream's table stays empty whatever size it allows.

import "slices"

// hpackStaticNames are the static table's lowest index of each name
// (RFC 7541 Appendix A).
var hpackStaticNames = map[string]uint8{
	":authority": 1, ":method": 2, ":path": 4, ":scheme": 6, ":status": 8,
	"accept-charset": 15, "accept-encoding": 16, "accept-language": 17, "accept-ranges": 18,
	"accept": 19, "access-control-allow-origin": 20, "age": 21, "allow": 22, "authorization": 23,
	"cache-control": 24, "content-disposition": 25, "content-encoding": 26, "content-language": 27,
	"content-length": 28, "content-location": 29, "content-range": 30, "content-type": 31,
	"cookie": 32, "date": 33, "etag": 34, "expect": 35, "expires": 36, "from": 37, "host": 38,
	"if-match": 39, "if-modified-since": 40, "if-none-match": 41, "if-range": 42,
	"if-unmodified-since": 43, "last-modified": 44, "link": 45, "location": 46, "max-forwards": 47,
	"proxy-authenticate": 48, "proxy-authorization": 49, "range": 50, "referer": 51, "refresh": 52,
	"retry-after": 53, "server": 54, "set-cookie": 55, "strict-transport-security": 56,
	"transfer-encoding": 57, "user-agent": 58, "vary": 59, "via": 60, "www-authenticate": 61,
}

// AppendHPACKInt appends i with an n-bit prefix, first holding the
// pattern's other bits (RFC 7541 §5.1).
func AppendHPACKInt(b []byte, first byte, n uint, i uint64) []byte {
	k := uint64(1)<<n - 1
	if i < k {
		return append(b, first|byte(i))
	}
	b = append(b, first|byte(k))
	for i -= k; i >= 128; i >>= 7 {
		b = append(b, byte(0x80|i&0x7f))
	}
	return append(b, byte(i))
}

// hpackByLen is hpackStaticNames by the names' length: a name is looked
// up among the few of its length, without hashing it.
var hpackByLen = func() (t [32][]hpackStatic) {
	for name, i := range hpackStaticNames {
		t[len(name)] = append(t[len(name)], hpackStatic{name, i})
	}
	return t
}()

type hpackStatic struct {
	name string
	i    uint8
}

// AppendHPACKField appends a field as a literal without indexing, its
// name lower-cased (RFC 9113 §8.2.1) and indexed when the static table
// has it. Both the gateway's HTTP/2 answers and its upstream calls use it.
func AppendHPACKField(b, name, value []byte) []byte {
	at := len(b)
	b = append(b, 0)
	b = AppendHPACKInt(b, 0, 7, uint64(len(name)))
	low := len(b)
	b = slices.Grow(b, len(name)+len(value)+5)[:low+len(name)]
	for i, ch := range name {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		b[low+i] = ch
	}
	if len(name) < len(hpackByLen) {
		for _, e := range hpackByLen[len(name)] {
			if e.name == string(b[low:]) {
				b = AppendHPACKInt(b[:at], 0, 4, uint64(e.i))
				break
			}
		}
	}
	b = AppendHPACKInt(b, 0, 7, uint64(len(value)))
	return append(b, value...)
}

// appendHPACKRequest appends a request's pseudo-fields, whole from the
// static table where it has them (GET, POST, http, https, "/").
func appendHPACKRequest(b, method, scheme, authority, path []byte) []byte {
	switch string(method) {
	case "GET":
		b = append(b, 0x82)
	case "POST":
		b = append(b, 0x83)
	default:
		b = AppendHPACKField(b, []byte(":method"), method)
	}
	switch string(scheme) {
	case "http":
		b = append(b, 0x86)
	case "https":
		b = append(b, 0x87)
	default:
		b = AppendHPACKField(b, []byte(":scheme"), scheme)
	}
	b = AppendHPACKField(b, []byte(":authority"), authority)
	if string(path) == "/" {
		return append(b, 0x84)
	}
	return AppendHPACKField(b, []byte(":path"), path)
}
