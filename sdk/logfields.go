package sdk

// Access-log fields a plugin adds to the request's line. The proxy's
// access log (README.md, "Access log") writes them after its own fields;
// a plugin that names one of the built-in fields the proxy cannot know
// by itself ("cache", "ratelimit") fills that field instead.

// MaxLogFields is how many fields plugins may add to one request's line;
// further ones are ignored (a line is no place for unbounded data).
const MaxLogFields = 8

type logField struct {
	name  string
	start int // value is logBuf[start:end]
	end   int
}

// SetLogField adds name=value to the request's access-log line, or
// replaces the value an earlier call set. name should be a constant
// snake_case identifier (it becomes a JSON key as it is); value is copied
// and escaped by the writer, so it may hold anything. Setting a field
// costs no allocation once the pooled Ctx has grown its buffer.
func (c *Ctx) SetLogField(name string, value []byte) {
	for i := 0; i < c.nlogFields; i++ {
		if f := &c.logFields[i]; f.name == name {
			if len(value) <= f.end-f.start {
				f.end = f.start + copy(c.logBuf[f.start:f.end], value)
				return
			}
			start := len(c.logBuf)
			c.logBuf = append(c.logBuf, value...)
			f.start, f.end = start, len(c.logBuf)
			return
		}
	}
	if c.nlogFields == MaxLogFields {
		return
	}
	start := len(c.logBuf)
	c.logBuf = append(c.logBuf, value...)
	c.logFields[c.nlogFields] = logField{name: name, start: start, end: len(c.logBuf)}
	c.nlogFields++
}

// LogField returns the value a plugin set for name, or nil.
func (c *Ctx) LogField(name string) []byte {
	for i := 0; i < c.nlogFields; i++ {
		if f := &c.logFields[i]; f.name == name {
			return c.logBuf[f.start:f.end]
		}
	}
	return nil
}

// NumLogFields is how many fields plugins set; LogFieldAt(i) reads the
// i-th, in the order they were first set.
func (c *Ctx) NumLogFields() int { return c.nlogFields }

// LogFieldAt returns the i-th field plugins set (0 <= i < NumLogFields).
// The value must not be kept.
func (c *Ctx) LogFieldAt(i int) (name string, value []byte) {
	f := &c.logFields[i]
	return f.name, c.logBuf[f.start:f.end]
}

func (c *Ctx) resetLogFields() {
	for i := 0; i < c.nlogFields; i++ {
		c.logFields[i] = logField{}
	}
	c.nlogFields = 0
	c.logBuf = c.logBuf[:0]
}
