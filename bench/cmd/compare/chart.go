package main

// This file draws the chart: throughput per workload and procs, one bar per
// implementation.

import (
	"fmt"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

func chart(res *results, path string) error {
	var labels []string
	var keys []rowKey
	for _, k := range res.rows {
		if k.group == "Ack" || k.group == "E2E" {
			keys = append(keys, k)
			name := k.workload
			if k.group == "E2E" {
				name = "e2e"
				if k.workload != "-" {
					name += "-" + k.workload
				}
			}
			labels = append(labels, fmt.Sprintf("%s/%d", name, k.procs))
		}
	}
	p := plot.New()
	p.Title.Text = "Ack and end-to-end throughput (higher is better; label: workload/procs)"
	p.Y.Label.Text = "million offsets per second"
	p.Legend.Top = true
	p.Legend.Left = false
	w := vg.Points(5)
	n := len(impls)
	for i, im := range impls {
		vals := make(plotter.Values, len(keys))
		for j, k := range keys {
			if r, ok := res.cell[k][im]; ok && nsPerOp(r) > 0 {
				vals[j] = 1e3 / nsPerOp(r)
			}
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return err
		}
		bars.LineStyle.Width = 0
		bars.Color = plotutil.Color(i)
		bars.Offset = w * vg.Length(float64(i)-float64(n-1)/2)
		p.Add(bars)
		p.Legend.Add(im, bars)
	}
	p.NominalX(labels...)
	p.Y.Min = 0
	p.Y.Max *= 1.2 // room for the legend
	p.X.Tick.Label.Rotation = 0.6
	p.X.Tick.Label.XAlign = -0.8
	return p.Save(vg.Length(len(keys))*36*vg.Points(1)+2*vg.Inch, 5*vg.Inch, path)
}
