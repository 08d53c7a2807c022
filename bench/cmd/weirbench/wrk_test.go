package main

import (
	"strings"
	"testing"
)

const wrkFull = `Running 2s test @ http://127.0.0.1:8080/static
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   600.00us  200.00us   5.00ms   80.00%
    Req/Sec    50.00k     2.00k   55.00k    70.00%
  Latency Distribution
     50%  560.00us
     75%  700.00us
     90%    0.90ms
     99%    1.50ms
  100000 requests in 2.00s, 10.00MB read
  Non-2xx or 3xx responses: 5
  Socket errors: connect 0, read 1, write 0, timeout 3
Requests/sec:  50000.00
Transfer/sec:      5.00MB
`

const wrkPlain = `Running 1s test @ http://127.0.0.1:8080/
  1 threads and 64 connections
  Latency Distribution
     50%    1.00s
     99%    1.00m
  1234 requests in 1.00m, 1.00MB read
Requests/sec:   1234.00
Transfer/sec:      5.00MB
`

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want wrkResult
		err  string
	}{
		{name: "full", in: wrkFull, want: wrkResult{Requests: 100000, Seconds: 2, RPS: 50000, Non2xx: 5, Errors: 4, P50us: 560, P99us: 1500}},
		{name: "seconds and minutes", in: wrkPlain, want: wrkResult{Requests: 1234, Seconds: 60, RPS: 1234, P50us: 1e6, P99us: 60e6}},
		{name: "empty", in: "", err: `parse wrk output: no "Requests/sec" or request count line (did wrk fail?)`},
		{name: "connection refused", in: "unable to connect to 127.0.0.1:1 Connection refused\n", err: "did wrk fail?"},
		{name: "bad rps", in: "Requests/sec: fast\n", err: `parse wrk output: requests/sec "fast"`},
		{name: "rps with extra field", in: "Requests/sec: 1 2\n", err: `parse wrk output: bad line "Requests/sec: 1 2"`},
		{name: "bad count", in: "  x requests in 2.00s, 1MB read\n", err: `parse wrk output: request count "x"`},
		{name: "bad run time", in: "  10 requests in 2.00parsecs, 1MB read\n", err: `parse wrk output: run time: bad duration "2.00parsecs"`},
		{name: "bad socket errors", in: "Socket errors: connect x\n", err: `parse wrk output: bad line "Socket errors: connect x"`},
		{name: "bad non-2xx", in: "Non-2xx or 3xx responses: many\n", err: `parse wrk output: bad line "Non-2xx or 3xx responses: many"`},
		{name: "bad latency", in: "Latency Distribution\n 50% 1.0xs\n", err: `parse wrk output: latency "50% 1.0xs"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseWrk(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseWrkDuration(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want float64
		err  bool
	}{
		{"560.00us", 560, false}, {"1.50ms", 1500, false}, {"2.00s", 2e6, false}, {"1.00m", 60e6, false},
		{"1.00h", 3600e6, false}, {"12", 0, true}, {"-1ms", 0, true}, {"ms", 0, true},
	} {
		got, err := parseWrkDuration(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseWrkDuration(%q) = %v, %v", tt.in, got, err)
		}
	}
}

// FuzzParseWrk: wrk's output is text from another program; whatever it
// prints, parsing must not panic, and a success has a request count line.
func FuzzParseWrk(f *testing.F) {
	f.Add(wrkFull)
	f.Add(wrkPlain)
	f.Add("Requests/sec: 1\n 1 requests in 1s, x\n")
	f.Add("Latency Distribution\n 50% \n")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseWrk(s)
		if err == nil && (r.Requests < 0 || r.Seconds < 0 || r.RPS < 0 || r.Non2xx < 0 || r.Errors < 0) {
			t.Fatalf("negative result %+v from %q", r, s)
		}
	})
}
