//lint:file-ignore SA1019 x/net/http2's Framer and hpack are the framing library (RATIONALE.md)

package transport

import (
	"errors"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// HeaderBlock reads a header block (HEADERS and its CONTINUATION
// frames) into fields, for the gateway's HTTP/2 server (requests) and its
// upstream client (answers and trailers), with the checks of x/net's
// Framer.ReadMetaHeaders, whose way cost 14 allocations a request (the
// frame, the decoder's closure and what it captures, the fields' slice
// grown from nothing): here the decoder, its emit function and the
// fields' slice are the connection's, reused for every block.
type HeaderBlock struct {
	dec  *hpack.Decoder
	max  uint32 // SETTINGS_MAX_HEADER_LIST_SIZE, ours
	mh   http2.MetaHeadersFrame
	keep []hpack.HeaderField // mh.Fields' storage

	// Per block.
	headersLeft, trailersLeft uint32
	sawRegular                bool
	invalid                   error
}

var (
	errH2PseudoAfter = errors.New("http2: pseudo header field after regular")
	errH2FieldName   = errors.New("http2: invalid header field name")
	errH2FieldValue  = errors.New("http2: invalid header field value")
	errH2PseudoField = errors.New("http2: invalid pseudo header field")
	errH2PseudoDup   = errors.New("http2: duplicate pseudo header field")
	errH2PseudoMixed = errors.New("http2: mix of request and response pseudo header fields")
)

// h2HeaderFieldsKept: a block with more fields does not keep its slice.
const h2HeaderFieldsKept = 32

func (b *HeaderBlock) Init(maxHeaderBytes int) {
	b.max = uint32(maxHeaderBytes)
	if maxHeaderBytes <= 0 || int64(maxHeaderBytes) > 1<<31-1 {
		b.max = 16 << 20 // x/net's default
	}
	b.dec = hpack.NewDecoder(4096, b.emit)
	b.dec.SetMaxStringLength(int(b.max))
}

// Read decodes the block hf starts, reading its CONTINUATION frames
// from fr. A block past max is Truncated (its stream gets 431); one far
// past it, a field the decoder refuses, or bytes after an invalid field
// end the connection; an invalid field or pseudo-field is a stream error.
// The frame returned is valid until the next call.
func (b *HeaderBlock) Read(fr *http2.Framer, hf *http2.HeadersFrame) (*http2.MetaHeadersFrame, error) {
	b.headersLeft, b.trailersLeft = b.max, b.max
	b.sawRegular, b.invalid = false, nil
	if cap(b.keep) > h2HeaderFieldsKept {
		b.keep = nil
	}
	b.mh = http2.MetaHeadersFrame{HeadersFrame: hf, Fields: b.keep[:0]}
	b.dec.SetEmitEnabled(true)
	var hc interface {
		HeaderBlockFragment() []byte
		HeadersEnded() bool
	} = hf
	for {
		frag := hc.HeaderBlockFragment()
		if int64(len(frag)) > 2*int64(b.headersLeft+b.trailersLeft) || b.invalid != nil {
			return nil, http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if _, err := b.dec.Write(frag); err != nil {
			return nil, http2.ConnectionError(http2.ErrCodeCompression)
		}
		if hc.HeadersEnded() {
			break
		}
		f, err := fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		hc = f.(*http2.ContinuationFrame) // the Framer checks the order
	}
	b.keep = b.mh.Fields[:0]
	if err := b.dec.Close(); err != nil {
		return nil, http2.ConnectionError(http2.ErrCodeCompression)
	}
	if b.invalid != nil {
		return nil, http2.StreamError{StreamID: hf.StreamID, Code: http2.ErrCodeProtocol, Cause: b.invalid}
	}
	if err := checkH2Pseudos(b.mh.PseudoFields()); err != nil {
		return nil, http2.StreamError{StreamID: hf.StreamID, Code: http2.ErrCodeProtocol, Cause: err}
	}
	return &b.mh, nil
}

// emit takes one decoded field (x/net's readMetaFrame, field for field).
func (b *HeaderBlock) emit(hf hpack.HeaderField) {
	if !httpguts.ValidHeaderFieldValue(hf.Value) {
		b.invalid = errH2FieldValue
	}
	if strings.HasPrefix(hf.Name, ":") {
		if b.sawRegular {
			b.invalid = errH2PseudoAfter
		}
	} else {
		b.sawRegular = true
		if !validH2FieldName(hf.Name) {
			b.invalid = errH2FieldName
		}
	}
	if b.invalid != nil {
		b.dec.SetEmitEnabled(false)
		return
	}
	left := &b.headersLeft
	size := hf.Size()
	if hf.Name == "trailer" {
		left = &b.trailersLeft
		n := strings.Count(hf.Value, ",") + 1
		size = uint32(len(hf.Value)-n+1) + uint32(n)*hpack.HeaderField{}.Size()
	}
	if size > *left {
		b.dec.SetEmitEnabled(false)
		b.mh.Truncated = true
		b.headersLeft, b.trailersLeft = 0, 0
		return
	}
	*left -= size
	b.mh.Fields = append(b.mh.Fields, hf)
}

// validH2FieldName: a token in lower case (RFC 9113 §8.2.1).
func validH2FieldName(v string) bool {
	if v == "" {
		return false
	}
	for _, r := range v {
		if !httpguts.IsTokenRune(r) || 'A' <= r && r <= 'Z' {
			return false
		}
	}
	return true
}

// checkH2Pseudos: known pseudo-fields, each once, not a request's and a
// response's together.
func checkH2Pseudos(pf []hpack.HeaderField) error {
	var req, resp bool
	for i, hf := range pf {
		switch hf.Name {
		case ":method", ":path", ":scheme", ":authority", ":protocol":
			req = true
		case ":status":
			resp = true
		default:
			return errH2PseudoField
		}
		for _, prev := range pf[:i] {
			if prev.Name == hf.Name {
				return errH2PseudoDup
			}
		}
	}
	if req && resp {
		return errH2PseudoMixed
	}
	return nil
}
