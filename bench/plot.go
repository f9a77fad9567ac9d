package main

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// toolColors keep one color per tool across charts; oci2 stands out.
var toolColors = map[string]color.RGBA{
	"oci2":        {0x1f, 0x6f, 0xb4, 0xff},
	baselineLabel: {0x8f, 0xb8, 0xdf, 0xff},
	"tar+gzip":    {0xa0, 0xa0, 0xa0, 0xff},
	"tar+zstd":    {0x60, 0x60, 0x60, 0xff},
	"restic":      {0xe0, 0x8a, 0x1e, 0xff},
	"borg":        {0x3f, 0x9a, 0x3f, 0xff},
	"casync":      {0x9a, 0x4a, 0x9a, 0xff},
}

// png draws stored bytes (MB) per scenario and tool as grouped bars.
func (rp *report) png(file string) error {
	if len(rp.Scenarios) == 0 {
		return fmt.Errorf("no scenario to plot")
	}
	var tools, names []string
	seen := map[string]bool{}
	for _, sc := range rp.Scenarios {
		names = append(names, sc.Name)
		for _, r := range sc.Rows {
			if !seen[r.Tool] {
				seen[r.Tool] = true
				tools = append(tools, r.Tool)
			}
		}
	}
	const width, height = 9 * vg.Inch, 4.5 * vg.Inch
	p := plot.New()
	p.Title.Text = fmt.Sprintf("oci2 bench %s: bytes stored per scenario (smaller is better)", rp.When.UTC().Format("2006-01-02"))
	p.Y.Label.Text = "MB stored"
	grid := plotter.NewGrid()
	grid.Vertical.Width = 0
	p.Add(grid)
	// bars of a scenario fill 80% of its slot (one x unit, about the plot
	// width less the axis, over the scenarios)
	barW := 0.8 * (width - 1.2*vg.Inch) / vg.Length(len(names)*len(tools))
	var peak float64
	for i, tool := range tools {
		vals := make(plotter.Values, len(names))
		for j, sc := range rp.Scenarios {
			for _, r := range sc.Rows {
				if r.Tool == tool && r.Err == nil {
					vals[j] = float64(r.Bytes) / 1e6
					peak = max(peak, vals[j])
				}
			}
		}
		bars, err := plotter.NewBarChart(vals, barW)
		if err != nil {
			return err
		}
		bars.LineStyle.Width = 0
		c, ok := toolColors[tool]
		if !ok {
			c = color.RGBA{0x40, 0x40, 0x40, 0xff}
		}
		bars.Color = c
		bars.Offset = barW * vg.Length(float64(i)-float64(len(tools)-1)/2)
		p.Add(bars)
		p.Legend.Add(tool, bars)
	}
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.5, float64(len(names))-0.5
	p.Y.Min, p.Y.Max = 0, peak*1.3 // headroom for the legend
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs = vg.Points(10)
	return p.Save(width, height, file)
}
