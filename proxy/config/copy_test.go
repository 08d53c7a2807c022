package config

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// filled returns a Config with every field of the schema set to a
// non-zero value, found by reflection so that fields added later are
// covered without touching this test.
func filled() *Config {
	c := new(Config)
	n := 0
	fill(reflect.ValueOf(c).Elem(), &n)
	return c
}

func fill(v reflect.Value, n *int) {
	*n++
	switch v.Type() {
	case durationType:
		v.SetInt(int64(time.Duration(*n) * time.Second))
		return
	case rawType:
		v.SetBytes([]byte(`{"k":` + strconv.Itoa(*n) + `}`))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), n)
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		fill(v.Index(0), n)
		fill(v.Index(1), n)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		val := reflect.New(v.Type().Elem()).Elem()
		fill(val, n)
		m.SetMapIndex(reflect.ValueOf("k"+strconv.Itoa(*n)), val)
		v.Set(m)
	case reflect.String:
		v.SetString("s" + strconv.Itoa(*n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Float64:
		v.SetFloat(float64(*n) / 1000)
	default:
		panic("fill: unhandled " + v.Type().String())
	}
}

// sharesMemory reports the first place where a and b hold the same
// pointer, slice array or map.
func sharesMemory(a, b reflect.Value, place string) string {
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() {
			return ""
		}
		if a.Pointer() == b.Pointer() {
			return place
		}
		return sharesMemory(a.Elem(), b.Elem(), place)
	case reflect.Slice:
		if a.Len() > 0 && a.Pointer() == b.Pointer() {
			return place
		}
		for i := 0; i < a.Len(); i++ {
			if p := sharesMemory(a.Index(i), b.Index(i), index(place, i)); p != "" {
				return p
			}
		}
	case reflect.Map:
		if a.Len() > 0 && a.Pointer() == b.Pointer() {
			return place
		}
		for _, k := range a.MapKeys() {
			if p := sharesMemory(a.MapIndex(k), b.MapIndex(k), key(place, k.String())); p != "" {
				return p
			}
		}
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if p := sharesMemory(a.Field(i), b.Field(i), key(place, a.Type().Field(i).Name)); p != "" {
				return p
			}
		}
	}
	return ""
}

func TestClone(t *testing.T) {
	c := filled()
	d := c.Clone()
	if !reflect.DeepEqual(c, d) {
		t.Fatal("clone differs from the original")
	}
	if p := sharesMemory(reflect.ValueOf(c), reflect.ValueOf(d), "config"); p != "" {
		t.Fatalf("clone shares memory with the original at %s", p)
	}
	if (*Config)(nil).Clone() != nil {
		t.Fatal("nil clone")
	}
	e := (&Config{}).Clone()
	if !reflect.DeepEqual(e, &Config{}) {
		t.Fatalf("empty clone %+v", e)
	}
}

func TestMarshalCanonical(t *testing.T) {
	c := mustParse(t, "listen: \":80\"\nserver: {read_timeout: 1500ms}\nroutes: [{name: r, service: s, headers: {b: \"<x>\", a: y}}]\n")
	out, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "listen": [
    ":80"
  ],
  "server": {
    "read_timeout": "1.5s"
  },
  "routes": [
    {
      "name": "r",
      "headers": {
        "a": "y",
        "b": "<x>"
      },
      "service": "s"
    }
  ]
}
`
	if string(out) != want {
		t.Fatalf("got\n%s", out)
	}
}

func TestMasked(t *testing.T) {
	c := mustParse(t, `
admin: {listen: "127.0.0.1:1", token: "${TOKEN}"}
redis: {addrs: ["h:1"], username: u, password: p}
routes:
  - name: r
    service: s
    plugins:
      - name: oauth2_introspection
        config: {client_id: id, client_secret: cs, nested: [{password: p, Secret: s, keep: k}], key: consumer}
consumers:
  - name: a
    credentials:
      key_auth: [{key: k1}, {key: ""}]
      jwt: [{issuer: i, secret: s, private_key: pk, algorithm: HS256}]
      basic: [{username: u, password: {deep: true}}]
plugins:
  - {name: x, config: {private_key: pk, empty_ok: null, client_secret: null}}
  - {name: y}
`)
	orig, _ := Marshal(c)
	m := c.Masked()
	if after, _ := Marshal(c); string(after) != string(orig) {
		t.Fatal("Masked changed the original")
	}
	if m.Admin.Token != Mask || m.Redis.Password != Mask || m.Redis.Username != "u" {
		t.Fatalf("admin/redis: %+v %+v", m.Admin, m.Redis)
	}
	checkRaw := func(got json.RawMessage, want string) {
		t.Helper()
		if string(got) != want {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	}
	checkRaw(m.Routes[0].Plugins[0].Config, `{"client_id":"id","client_secret":"******","nested":[{"password":"******","Secret":"******","keep":"k"}],"key":"consumer"}`)
	checkRaw(m.Consumers[0].Credentials.Of("key_auth")[0], `{"key":"******"}`)
	checkRaw(m.Consumers[0].Credentials.Of("key_auth")[1], `{"key":""}`)
	checkRaw(m.Consumers[0].Credentials.Of("jwt")[0], `{"issuer":"i","secret":"******","private_key":"******","algorithm":"HS256"}`)
	checkRaw(m.Consumers[0].Credentials.Of("basic")[0], `{"username":"u","password":"******"}`)
	checkRaw(m.Plugins[0].Config, `{"private_key":"******","empty_ok":null,"client_secret":null}`)
	if m.Plugins[1].Config != nil {
		t.Fatalf("absent config became %s", m.Plugins[1].Config)
	}

	// Secrets that are not set stay visibly unset.
	e := (&Config{Admin: &Admin{Listen: "127.0.0.1:1"}, Redis: &Redis{}}).Masked()
	if e.Admin.Token != "" || e.Redis.Password != "" {
		t.Fatal("empty secrets were masked")
	}
	// Invalid raw JSON (a config built in code) is masked whole.
	bad := &Config{Plugins: []Plugin{{Name: "x", Config: json.RawMessage(`{"secret": `)}}}
	checkRaw(bad.Masked().Plugins[0].Config, `"******"`)
	if (*Config)(nil).Masked() != nil {
		t.Fatal("nil masked")
	}
	out, err := Marshal(m)
	if err != nil || strings.Contains(string(out), "s3cret") || strings.Contains(string(out), `"pk"`) {
		t.Fatalf("masked output leaks: %v\n%s", err, out)
	}
}
