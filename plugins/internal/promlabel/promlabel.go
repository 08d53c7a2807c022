// Package promlabel renders label values for metric names built when a
// plugin's config loads (metrics.GetOrCreateCounter takes the whole
// Prometheus series name, labels included).
package promlabel

// Quote returns s as a quoted Prometheus label value. The text exposition
// format escapes only backslash, double quote and line feed
// (https://prometheus.io/docs/instrumenting/exposition_formats/#text-format-details);
// every other byte, UTF-8 included, is written as it is.
func Quote(s string) string {
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\', '"':
			b = append(b, '\\', s[i])
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, s[i])
		}
	}
	return string(append(b, '"'))
}
