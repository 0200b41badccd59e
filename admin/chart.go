package admin

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/isrproxy/isrproxy/metrics"
)

// The charts are SVG drawn here, on the server: no script and no asset
// leaves the page. Both share the time axis, the window of the last
// HistoryBuckets × BucketWidth ending now.
const (
	chartWidth  = 720.0
	plotLeft    = 56.0 // room for the y-axis labels
	plotRight   = 8.0
	plotTop     = 8.0
	plotBottom  = 20.0 // room for the x-axis labels
	window      = metrics.HistoryBuckets * metrics.BucketWidth
	plotWidth   = chartWidth - plotLeft - plotRight
	reqHeight   = 180.0
	latHeight   = 120.0
	minBarWidth = 3.0 // a bucket that just opened still shows
)

// chart is one SVG's geometry, ready for the template.
type chart struct {
	Width, Height float64
	Mid           float64 // where the Empty text stands
	Series        []series
	Grid          []gridLine
	Ticks         []tick
	Empty         string // said over an empty plot
}

// series is one coloured path of a chart.
type series struct {
	Name, Class string
	D           string // the path's data
	Total       string // the legend's figure
}

type gridLine struct {
	Y     float64
	Label string
}

type tick struct {
	X             float64
	Label, Anchor string
}

// scale maps the window's times and a value range to plot coordinates.
type scale struct {
	from   time.Time
	height float64
	max    float64
}

func (s scale) x(t time.Time) float64 {
	f := float64(t.Sub(s.from)) / float64(window)
	return plotLeft + math.Max(0, math.Min(1, f))*plotWidth
}

func (s scale) y(v float64) float64 {
	inner := s.height - plotTop - plotBottom
	return plotTop + inner - v/s.max*inner
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func frame(now time.Time, height, max float64, label func(float64) string) (scale, chart) {
	s := scale{from: now.Add(-window), height: height, max: niceCeil(max)}
	c := chart{Width: chartWidth, Height: height, Mid: plotLeft + plotWidth/2}
	for _, f := range []float64{0, 0.5, 1} {
		c.Grid = append(c.Grid, gridLine{Y: s.y(f * s.max), Label: label(f * s.max)})
	}
	for m := 15; m >= 0; m -= 5 {
		t := tick{X: s.x(now.Add(-time.Duration(m) * time.Minute)), Label: fmt.Sprintf("−%d min", m), Anchor: "middle"}
		if m == 0 {
			t.Label, t.Anchor = "now", "end" // within the picture
		}
		c.Ticks = append(c.Ticks, t)
	}
	return s, c
}

// bucketSpan is where a bucket's bar lies on the x axis.
func bucketSpan(s scale, b metrics.Bucket) (x0, x1 float64) {
	x0, x1 = s.x(b.Start), s.x(b.End)
	if x1-x0 < minBarWidth {
		x0 = x1 - minBarWidth
	}
	return x0, x1
}

// requestsChart stacks, per bucket, hits at the bottom, then stale
// answers, misses and pass-throughs.
func requestsChart(now time.Time, buckets []metrics.Bucket) chart {
	layers := []struct {
		name, class string
		of          func(metrics.Totals) uint64
	}{
		{"hits", "hit", func(t metrics.Totals) uint64 { return t.Hits }},
		{"stale", "stale", func(t metrics.Totals) uint64 { return t.Stale }},
		{"misses", "miss", func(t metrics.Totals) uint64 { return t.Misses }},
		{"bypass", "bypass", func(t metrics.Totals) uint64 { return t.Bypass }},
	}
	var top uint64
	for _, b := range buckets {
		top = max(top, b.Requests())
	}
	s, c := frame(now, reqHeight, float64(top), func(v float64) string { return fmt.Sprintf("%.0f", v) })
	paths := make([]strings.Builder, len(layers))
	totals := make([]uint64, len(layers))
	for _, b := range buckets {
		if !b.End.After(s.from) {
			continue
		}
		x0, x1 := bucketSpan(s, b)
		var below uint64
		for i, l := range layers {
			v := l.of(b.Totals)
			totals[i] += v
			y0, y1 := s.y(float64(below)), s.y(float64(below+v))
			fmt.Fprintf(&paths[i], "M%.1f %.1fH%.1fV%.1fH%.1fZ", x0, y0, x1, y1, x0)
			below += v
		}
	}
	for i, l := range layers {
		c.Series = append(c.Series, series{Name: l.name, Class: l.class, D: paths[i].String(), Total: fmt.Sprint(totals[i])})
	}
	if top == 0 {
		c.Empty = "no page requests in the last 15 minutes"
	}
	return c
}

// latencyChart draws the mean origin latency of each bucket that had
// fills or refetches, as steps; buckets without any leave a gap.
func latencyChart(now time.Time, buckets []metrics.Bucket) chart {
	var top time.Duration
	var n, nanos uint64
	for _, b := range buckets {
		top = max(top, b.MeanOrigin())
		n += b.OriginRequests
		nanos += b.OriginNanos
	}
	s, c := frame(now, latHeight, float64(top)/float64(time.Millisecond), func(v float64) string { return fmt.Sprintf("%g ms", v) })
	var d strings.Builder
	joined := false // the previous bucket drew: continue its step
	for _, b := range buckets {
		if b.OriginRequests == 0 || !b.End.After(s.from) {
			joined = false
			continue
		}
		x0, x1 := bucketSpan(s, b)
		y := s.y(float64(b.MeanOrigin()) / float64(time.Millisecond))
		if joined {
			fmt.Fprintf(&d, "V%.1fH%.1f", y, x1)
		} else {
			fmt.Fprintf(&d, "M%.1f %.1fH%.1f", x0, y, x1)
		}
		joined = true
	}
	mean := "—"
	if n > 0 {
		mean = formatDuration(time.Duration(nanos / n))
	}
	c.Series = []series{{Name: "mean origin latency", Class: "latency", D: d.String(), Total: mean}}
	if n == 0 {
		c.Empty = "no origin fetches in the last 15 minutes"
	}
	return c
}

// formatDuration rounds d for reading: 3.2 ms, 41 ms, 1.25 s.
func formatDuration(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}
