package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
)

var (
	colBackground = color.RGBA{255, 255, 255, 255}
	colText       = color.RGBA{30, 30, 30, 255}
	colMuted      = color.RGBA{110, 110, 110, 255}
	colGrid       = color.RGBA{225, 225, 225, 255}
	kindColors    = map[string]color.RGBA{
		"direct":  {150, 150, 150, 255},
		"nginx":   {0, 150, 57, 255},
		"haproxy": {30, 100, 200, 255},
		"weir":    {230, 120, 20, 255},
	}
)

const (
	chartW     = 1100
	scale      = 2
	rowH       = 24
	barH       = 16
	margin     = 20
	panelGap   = 30
	titleH     = 26
	valueRoomW = 150 // right of the longest bar, for its value
)

// renderChart draws two bar panels, max RPS and p99 at the reference load,
// one bar per contender and body, colored by kind.
func renderChart(rep *report) ([]byte, error) {
	rows := rep.Results
	labelW := 0
	for _, r := range rows {
		if w := textWidth(r.Contender+" "+r.Body, scale); w > labelW {
			labelW = w
		}
	}
	labelW += 16
	n := len(rows)
	if n == 0 {
		n = 1
	}
	panelH := titleH + n*rowH + 10
	height := margin + 2*titleH + 2*panelH + panelGap + 2*rowH + margin
	img := image.NewRGBA(image.Rect(0, 0, chartW, height))
	fill(img, img.Bounds(), colBackground)

	y := margin
	drawText(img, margin, y, fmt.Sprintf("Weir bench (%s), %s", rep.Mode, rep.Started.Format("2006-01-02 15:04")), scale+1, colText)
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
	y = drawPanel(img, y, labelW, "max RPS, closed loop ("+rep.Settings.ClosedLoop+"), higher is better", rows, rps, fmtInt)
	y += panelGap
	basis := "nginx"
	if b, ok := rep.RateBasis["64B"]; ok {
		basis = b.Contender
	}
	y = drawPanel(img, y, labelW, fmt.Sprintf("p99 ms at a constant %d%% of %s's capacity (open loop), lower is better", rep.Settings.RefLoad, basis), rows, p99,
		func(v float64) string { return fmtMs(v) + " ms" })

	// Legend.
	x := margin
	for _, k := range []string{"direct", "nginx", "haproxy", "weir"} {
		fill(img, image.Rect(x, y+4, x+14, y+18), kindColors[k])
		drawText(img, x+20, y+4, k, scale, colText)
		x += 20 + textWidth(k, scale) + 30
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// drawPanel draws one titled bar panel from y and returns the y below it.
func drawPanel(img *image.RGBA, y, labelW int, title string, rows []cellReport, vals []float64, format func(float64) string) int {
	drawText(img, margin, y, title, scale, colText)
	y += titleH
	x0 := margin + labelW
	maxW := chartW - x0 - margin - valueRoomW
	top := 0.0
	for _, v := range vals {
		top = maxf(top, v)
	}
	// Grid lines at quarters of the largest value.
	for q := 1; q <= 4; q++ {
		gx := x0 + maxW*q/4
		fill(img, image.Rect(gx, y, gx+1, y+len(rows)*rowH), colGrid)
	}
	fill(img, image.Rect(x0, y, x0+1, y+len(rows)*rowH), colMuted)
	for i, r := range rows {
		ry := y + i*rowH
		label := r.Contender + " " + r.Body
		drawText(img, x0-8-textWidth(label, scale), ry+(rowH-glyphH*scale)/2, label, scale, colText)
		v := vals[i]
		if v <= 0 || top <= 0 {
			drawText(img, x0+6, ry+(rowH-glyphH*scale)/2, "not measured", scale, colMuted)
			continue
		}
		w := int(float64(maxW) * v / top)
		if w < 1 {
			w = 1
		}
		c, ok := kindColors[r.Kind]
		if !ok {
			c = kindColors["weir"]
		}
		by := ry + (rowH-barH)/2
		fill(img, image.Rect(x0+1, by, x0+1+w, by+barH), c)
		drawText(img, x0+w+8, ry+(rowH-glyphH*scale)/2, format(v), scale, colText)
	}
	return y + len(rows)*rowH + 10
}
