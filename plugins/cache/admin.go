package cache

import (
	"bytes"
	"strconv"

	json "github.com/goccy/go-json"
	"github.com/weirgw/weir/sdk"
)

// PurgeRequest is the body of the admin route POST /cache/purge: exactly
// one of the fields.
//
//	{"url": "https://api.example.com/users/7"}   one URL, with its Vary variants
//	{"prefix": "https://api.example.com/users/"} every URL below a prefix
//	{"tag": "user-7"}                           every object with that surrogate key
type PurgeRequest struct {
	URL    string `json:"url,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	Tag    string `json:"tag,omitempty"`
}

// HandlePurge runs a purge request body for the admin API and returns the
// HTTP status and JSON body to answer with: 200 {"purged":N} (N counts the
// stored keys removed on this node and in Redis; other nodes are reached
// through Redis pub/sub), or 400 {"status":400,"error":"..."}.
func HandlePurge(body []byte) (int, []byte) {
	var r PurgeRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return purgeError("cache purge: body must be {\"url\"|\"prefix\"|\"tag\": \"...\"}")
	}
	set := 0
	for _, v := range []string{r.URL, r.Prefix, r.Tag} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return purgeError("cache purge: give exactly one of url, prefix or tag")
	}
	var (
		n   int
		err error
	)
	switch {
	case r.URL != "":
		n, err = Purge(r.URL)
	case r.Prefix != "":
		n, err = PurgePrefix(r.Prefix)
	default:
		n, err = PurgeTag(r.Tag)
	}
	if err != nil {
		return purgeError(err.Error())
	}
	b := strconv.AppendInt([]byte(`{"purged":`), int64(n), 10)
	return 200, append(b, '}')
}

func purgeError(msg string) (int, []byte) {
	b := append([]byte(`{"status":400,"error":`), sdk.AppendJSONString(nil, msg)...)
	return 400, append(b, '}')
}
