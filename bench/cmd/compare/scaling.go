package main

// This file measures and draws the scaling curves (bench.ByPartitions,
// ByWindow, ByAckers): the cost per message as a consumer's partitions, the
// offsets in flight and the acking goroutines grow.

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/inorder/inorder/bench"
)

// curve is one scaling curve: for each implementation, ns per message at
// each x (and, for partitions, heap bytes per partition).
type curve struct {
	name, xLabel string
	xs           []int
	ns           map[string][]float64
	mem          map[string][]float64 // partitions only
}

func runScaling(progress io.Writer) ([]*curve, error) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(runtime.NumCPU())
	curves := []*curve{
		{name: "partitions", xLabel: "partitions per consumer", xs: bench.ScalePartitions},
		{name: "window", xLabel: "offsets in flight (one partition)", xs: bench.ScaleWindows},
		{name: "ackers", xLabel: "acking goroutines (end to end, batches)", xs: bench.ScaleAckers},
	}
	for _, c := range curves {
		c.ns, c.mem = map[string][]float64{}, map[string][]float64{}
		for _, im := range bench.ScaleImpls {
			for _, x := range c.xs {
				var f func(b *testing.B)
				switch c.name {
				case "partitions":
					f = func(b *testing.B) { bench.ByPartitions(b, im, x) }
				case "window":
					f = func(b *testing.B) { bench.ByWindow(b, im, x) }
				default:
					f = func(b *testing.B) { bench.ByAckers(b, im, x) }
				}
				r := testing.Benchmark(f)
				ns, ok := r.Extra["ns/msg"]
				if r.N == 0 || !ok {
					return nil, fmt.Errorf("scaling %s=%d impl=%s failed (run the benchmark with go test to see why)", c.name, x, im)
				}
				c.ns[im] = append(c.ns[im], ns)
				line := fmt.Sprintf("Scaling      %-10s impl=%-9s x=%-8d %10.1f ns/msg", c.name, im, x, ns)
				if c.name == "partitions" {
					m := bench.PartitionMemory(im, x)
					c.mem[im] = append(c.mem[im], m)
					line += fmt.Sprintf(" %10.0f B/partition", m)
				}
				fmt.Fprintln(progress, line)
			}
		}
	}
	return curves, nil
}

func writeScaling(w io.Writer, curves []*curve) {
	fmt.Fprintf(w, "\n## Scaling (GOMAXPROCS %d; ns per message tracked and acked; btree/wm = ratio)\n\n", runtime.NumCPU())
	for _, c := range curves {
		fmt.Fprintf(w, "| %s |", c.xLabel)
		for _, im := range bench.ScaleImpls {
			fmt.Fprintf(w, " %s ns/msg |", im)
		}
		fmt.Fprintf(w, " btree/wm |")
		if c.name == "partitions" {
			for _, im := range bench.ScaleImpls {
				fmt.Fprintf(w, " %s B/partition (empty) |", im)
			}
		}
		fmt.Fprintf(w, "\n|--:|")
		for range bench.ScaleImpls {
			fmt.Fprintf(w, "--:|")
		}
		fmt.Fprintf(w, "--:|")
		if c.name == "partitions" {
			for range bench.ScaleImpls {
				fmt.Fprintf(w, "--:|")
			}
		}
		fmt.Fprintln(w)
		for i, x := range c.xs {
			fmt.Fprintf(w, "| %d |", x)
			for _, im := range bench.ScaleImpls {
				fmt.Fprintf(w, " %s |", fmtNs(c.ns[im][i]))
			}
			fmt.Fprintf(w, " %s |", ratio(c.ns["btree"][i], c.ns["watermark"][i]))
			if c.name == "partitions" {
				for _, im := range bench.ScaleImpls {
					fmt.Fprintf(w, " %.0f |", c.mem[im][i])
				}
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w)
	}
}

// scalingChart draws the curves side by side, log-log.
func scalingChart(curves []*curve, path string) error {
	row := make([]*plot.Plot, len(curves))
	for j, c := range curves {
		p := plot.New()
		p.Title.Text = "by " + c.name
		p.X.Label.Text = c.xLabel
		p.Y.Label.Text = "ns per message (log)"
		p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
		p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{}, plot.LogTicks{}
		for i, im := range bench.ScaleImpls {
			pts := make(plotter.XYs, len(c.xs))
			for k, x := range c.xs {
				pts[k].X, pts[k].Y = float64(x), c.ns[im][k]
			}
			l, s, err := plotter.NewLinePoints(pts)
			if err != nil {
				return err
			}
			l.Color, s.Color = plotutil.Color(i), plotutil.Color(i)
			s.Shape = plotutil.Shape(i)
			p.Add(l, s)
			p.Legend.Add(im, l, s)
		}
		p.Legend.Top = true
		row[j] = p
	}
	const w, h = 15 * vg.Inch, 5 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(row), PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{row}, tiles, dc)
	for j, p := range row {
		p.Draw(canvases[0][j])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
