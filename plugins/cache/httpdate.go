package cache

import (
	"github.com/weirgw/weir/internal/charset"
	"github.com/weirgw/weir/internal/httpsyntax"
)

// parseHTTPDate reads an HTTP-date (RFC 9110 §5.6.7) into Unix seconds
// without allocating. It accepts the three historical formats
//
//	Sun, 06 Nov 1994 08:49:37 GMT    IMF-fixdate
//	Sunday, 06-Nov-94 08:49:37 GMT   obsolete RFC 850
//	Sun Nov  6 08:49:37 1994         ANSI C asctime()
//
// leniently (any case, extra spaces, a missing comma), as the RFC asks of
// recipients, but refuses zones other than GMT/UTC and anything that is
// not a date at all ("0", "-1"), which callers then treat as "in the past"
// where the RFC says so (Expires, §5.3).
//
// nowYear is used for two-digit years: a year more than 50 years in the
// future is read as the most recent past year with the same last two
// digits (RFC 9110 §5.6.7).
func parseHTTPDate(b []byte, nowYear int) (int64, bool) {
	var (
		day, month, year, yearDigits = -1, -1, -1, 0
		hh, mm, ss                   = -1, -1, -1
		zoneOK                       = true
		nums                         = 0
	)
	i, n := 0, len(b)
	for i < n {
		c := b[i]
		switch {
		case c == ' ' || c == '\t' || c == ',' || c == '-':
			i++
		case charset.IsDigit(c):
			j := i
			for j < n && charset.IsDigit(b[j]) {
				j++
			}
			if j < n && b[j] == ':' {
				// hh:mm:ss
				if hh >= 0 {
					return 0, false
				}
				var ok bool
				hh, mm, ss, j, ok = parseClock(b, i)
				if !ok {
					return 0, false
				}
				i = j
				continue
			}
			v, digits := atoiSmall(b[i:j])
			if digits > 4 {
				return 0, false
			}
			switch {
			case nums == 0 && digits <= 2:
				day = v
			case nums == 0 && digits == 4:
				// A year first is no HTTP-date format.
				return 0, false
			case nums == 1:
				year, yearDigits = v, digits
			default:
				return 0, false
			}
			nums++
			i = j
		case isAlpha(c):
			j := i
			for j < n && isAlpha(b[j]) {
				j++
			}
			w := b[i:j]
			if m := monthIndex(w); m >= 0 {
				if month >= 0 {
					return 0, false
				}
				month = m
			} else if isWeekday(w) {
				// ignored: the day name carries no information
			} else if httpsyntax.EqualFoldLower(w, "gmt") || httpsyntax.EqualFoldLower(w, "utc") || httpsyntax.EqualFoldLower(w, "ut") || httpsyntax.EqualFoldLower(w, "z") {
				zoneOK = true
			} else {
				zoneOK = false
			}
			i = j
		default:
			return 0, false
		}
	}
	if !zoneOK || day < 1 || day > 31 || month < 0 || year < 0 || hh < 0 {
		return 0, false
	}
	if yearDigits <= 2 {
		year += 2000
		if year > nowYear+50 {
			year -= 100
		}
	} else if yearDigits == 3 {
		year += 1900
	}
	if hh > 23 || mm > 59 || ss > 60 || day > daysIn(month, year) {
		return 0, false
	}
	if ss == 60 {
		ss = 59
	}
	return daysFromCivil(year, month+1, day)*86400 + int64(hh*3600+mm*60+ss), true
}

func parseClock(b []byte, i int) (hh, mm, ss, next int, ok bool) {
	var parts [3]int
	for p := 0; p < 3; p++ {
		j := i
		for j < len(b) && charset.IsDigit(b[j]) {
			j++
		}
		if j == i || j-i > 2 {
			return 0, 0, 0, 0, false
		}
		parts[p], _ = atoiSmall(b[i:j])
		i = j
		if p < 2 {
			if i >= len(b) || b[i] != ':' {
				return 0, 0, 0, 0, false
			}
			i++
		}
	}
	return parts[0], parts[1], parts[2], i, true
}

func atoiSmall(b []byte) (v, digits int) {
	for _, c := range b {
		v = v*10 + int(c-'0')
	}
	return v, len(b)
}

func isAlpha(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

const monthNames = "janfebmaraprmayjunjulaugsepoctnovdec"

func monthIndex(w []byte) int {
	if len(w) != 3 {
		return -1
	}
	for m := 0; m < 12; m++ {
		if httpsyntax.EqualFoldLower(w, monthNames[m*3:m*3+3]) {
			return m
		}
	}
	return -1
}

var weekdays = [...]string{"mon", "tue", "wed", "thu", "fri", "sat", "sun",
	"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}

func isWeekday(w []byte) bool {
	for _, d := range weekdays {
		if httpsyntax.EqualFoldLower(w, d) {
			return true
		}
	}
	return false
}

func daysIn(month0, year int) int {
	switch month0 {
	case 1:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 3, 5, 8, 10:
		return 30
	}
	return 31
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian
// date (Howard Hinnant's algorithm), so no time.Time is built per request.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// appendHTTPDate appends t (Unix seconds) as an IMF-fixdate.
func appendHTTPDate(dst []byte, t int64) []byte {
	days := t / 86400
	secs := t % 86400
	if secs < 0 {
		secs += 86400
		days--
	}
	y, m, d := civilFromDays(days)
	wd := (days + 4) % 7 // 1970-01-01 was a Thursday
	if wd < 0 {
		wd += 7
	}
	const wdNames = "SunMonTueWedThuFriSat"
	const mNames = "JanFebMarAprMayJunJulAugSepOctNovDec"
	dst = append(dst, wdNames[wd*3:wd*3+3]...)
	dst = append(dst, ", "...)
	dst = append2(dst, d)
	dst = append(dst, ' ')
	dst = append(dst, mNames[(m-1)*3:(m-1)*3+3]...)
	dst = append(dst, ' ')
	dst = append2(dst, y/100)
	dst = append2(dst, y%100)
	dst = append(dst, ' ')
	dst = append2(dst, int(secs/3600))
	dst = append(dst, ':')
	dst = append2(dst, int(secs%3600/60))
	dst = append(dst, ':')
	dst = append2(dst, int(secs%60))
	return append(dst, " GMT"...)
}

func append2(dst []byte, v int) []byte {
	return append(dst, byte('0'+v/10%10), byte('0'+v%10))
}

func civilFromDays(z int64) (y, m, d int) {
	z += 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	yy := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		m = int(mp + 3)
	} else {
		m = int(mp - 9)
	}
	if m <= 2 {
		yy++
	}
	return int(yy), m, d
}
