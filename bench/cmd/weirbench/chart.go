package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strconv"
)

// The chart is SVG written with encoding/xml: text is the viewer's font,
// escaping is the encoder's, and a test can read it back as XML.

var kindColors = map[string]string{
	"direct":  "#969696",
	"nginx":   "#009639",
	"haproxy": "#1e64c8",
	"weir":    "#e67814",
}

const (
	colText  = "#1e1e1e"
	colMuted = "#6e6e6e"
	colGrid  = "#e1e1e1"

	chartW     = 1100
	rowH       = 24
	barH       = 16
	margin     = 20
	panelGap   = 30
	titleH     = 26
	fontPx     = 13
	charW      = 8   // a generous average advance at fontPx, for the label column
	valueRoomW = 150 // right of the longest bar, for its value
)

// svgEl is one SVG element: its name, attributes, text and children.
type svgEl struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Kids    []svgEl
}

func el(name string, text string, attrs ...string) svgEl {
	e := svgEl{XMLName: xml.Name{Local: name}, Text: text}
	for i := 0; i+1 < len(attrs); i += 2 {
		e.Attrs = append(e.Attrs, xml.Attr{Name: xml.Name{Local: attrs[i]}, Value: attrs[i+1]})
	}
	return e
}

func px(v int) string { return strconv.Itoa(v) }

func label(x, y int, s, anchor, color string, size int) svgEl {
	return el("text", s, "x", px(x), "y", px(y), "font-size", px(size), "fill", color, "text-anchor", anchor,
		"dominant-baseline", "middle")
}

// renderChart draws two bar panels, max RPS and p99 at the reference load,
// one bar per contender and body, colored by kind.
func renderChart(rep *report) ([]byte, error) {
	rows := rep.Results
	labelW := 0
	for _, r := range rows {
		if w := len(r.Contender+" "+r.Body) * charW; w > labelW {
			labelW = w
		}
	}
	labelW += 16
	n := max(len(rows), 1)
	panelH := titleH + n*rowH + 10
	height := margin + 2*titleH + 2*panelH + panelGap + 2*rowH + margin

	var kids []svgEl
	kids = append(kids, el("rect", "", "width", "100%", "height", "100%", "fill", "#ffffff"))
	y := margin
	kids = append(kids, label(margin, y+titleH/2, fmt.Sprintf("Weir bench (%s), %s", rep.Mode, rep.Started.Format("2006-01-02 15:04")),
		"start", colText, fontPx+5))
	y += 2 * titleH

	rps := make([]float64, len(rows))
	p99 := make([]float64, len(rows))
	for i, r := range rows {
		rps[i] = r.MaxRPS
		for _, l := range r.Latency {
			if l.LoadPct == r.RefLoad {
				p99[i] = l.P99ms
			}
		}
	}
	var panel svgEl
	panel, y = drawPanel(y, labelW, "rps", "max RPS, closed loop ("+rep.Settings.ClosedLoop+"), higher is better", rows, rps, fmtInt)
	kids = append(kids, panel)
	y += panelGap
	basis := "nginx"
	if b, ok := rep.RateBasis["64B"]; ok {
		basis = b.Contender
	}
	panel, y = drawPanel(y, labelW, "p99", fmt.Sprintf("p99 ms at a constant %d%% of %s's capacity (open loop), lower is better", rep.Settings.RefLoad, basis), rows, p99,
		func(v float64) string { return fmtMs(v) + " ms" })
	kids = append(kids, panel)

	// Legend.
	x := margin
	legend := el("g", "", "class", "legend")
	for _, k := range []string{"direct", "nginx", "haproxy", "weir"} {
		legend.Kids = append(legend.Kids, el("rect", "", "x", px(x), "y", px(y+4), "width", "14", "height", "14", "fill", kindColors[k]),
			label(x+20, y+11, k, "start", colText, fontPx))
		x += 20 + len(k)*charW + 30
	}
	kids = append(kids, legend)

	doc := el("svg", "", "xmlns", "http://www.w3.org/2000/svg", "width", px(chartW), "height", px(height),
		"viewBox", fmt.Sprintf("0 0 %d %d", chartW, height), "font-family", "sans-serif")
	doc.Kids = kids
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", " ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// drawPanel draws one titled bar panel (a group named id) from y and
// returns it with the y below it. A measured row gets one rect of class
// "bar" carrying its contender and body; an unmeasured one says so.
func drawPanel(y, labelW int, id, title string, rows []cellReport, vals []float64, format func(float64) string) (svgEl, int) {
	g := el("g", "", "id", id)
	g.Kids = append(g.Kids, label(margin, y+titleH/2, title, "start", colText, fontPx))
	y += titleH
	x0 := margin + labelW
	maxW := chartW - x0 - margin - valueRoomW
	top := 0.0
	for _, v := range vals {
		top = max(top, v)
	}
	h := px(len(rows) * rowH)
	// Grid lines at quarters of the largest value.
	for q := 1; q <= 4; q++ {
		g.Kids = append(g.Kids, el("rect", "", "x", px(x0+maxW*q/4), "y", px(y), "width", "1", "height", h, "fill", colGrid))
	}
	g.Kids = append(g.Kids, el("rect", "", "x", px(x0), "y", px(y), "width", "1", "height", h, "fill", colMuted))
	for i, r := range rows {
		mid := y + i*rowH + rowH/2
		g.Kids = append(g.Kids, label(x0-8, mid, r.Contender+" "+r.Body, "end", colText, fontPx))
		v := vals[i]
		if v <= 0 || top <= 0 {
			g.Kids = append(g.Kids, label(x0+6, mid, "not measured", "start", colMuted, fontPx))
			continue
		}
		w := max(int(float64(maxW)*v/top), 1)
		c, ok := kindColors[r.Kind]
		if !ok {
			c = kindColors["weir"]
		}
		bar := el("rect", "", "class", "bar", "data-contender", r.Contender, "data-body", r.Body,
			"x", px(x0+1), "y", px(mid-barH/2), "width", px(w), "height", px(barH), "fill", c)
		bar.Kids = []svgEl{el("title", r.Contender+" "+r.Body+": "+format(v))}
		g.Kids = append(g.Kids, bar, label(x0+w+8, mid, format(v), "start", colText, fontPx))
	}
	return g, y + len(rows)*rowH + 10
}
