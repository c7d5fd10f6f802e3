package schema

import (
	"path"
	"regexp"

	"gopkg.in/yaml.v3"
)

// MetricsFile declares which fetched files hold which metrics.
const MetricsFile = "metrics.yaml"

// Metric is one metrics.yaml entry: the files of a run folder that hold
// it (a glob relative to the run's results folder) and how to read one
// number, or many, from them.
type Metric struct {
	Node
	Name   string
	Files  string // glob, such as experiment-results/sink/latency.csv or experiment-results/producers/*/sent.csv
	Column string // CSV: the header of the column holding the values
	// TimeColumn, for CSV, holds each value's time in seconds (such as a
	// Unix time): the x of plots over time, else the value's position.
	TimeColumn string
	Regex      *regexp.Regexp
	Lines      bool // one number per line
	Unit       string
}

var metricKeys = []string{"name", "files", "csv_column", "time_column", "regex", "lines", "unit"}

// DecodeMetrics reads metrics.yaml: a list under "metrics:", each entry with
// exactly one way of reading: csv_column, regex (whose first group, or
// whole match, is the number) or lines.
func DecodeMetrics(file string, data []byte) ([]Metric, error) {
	var errs Errors
	d := &decoder{file: file, errs: &errs}
	root := d.document(data, `"metrics:" with a list of metrics (name, files, and csv_column, regex or lines)`)
	if root == nil {
		return nil, errs.Err()
	}
	fs, node := d.fields(root, "metrics file", []string{"metrics"})
	d.require(node, "metrics file", "metrics")
	var out []Metric
	seen := map[string]bool{}
	for _, f := range fs {
		v := resolve(f.v)
		if v.Kind != yaml.SequenceNode {
			d.errorf(v, "metrics: found %s, expected a list of metrics", describe(v))
			continue
		}
		for _, c := range v.Content {
			m := d.metric(c)
			if m.Name != "" && seen[m.Name] {
				d.errorf(c, "metric %q: declared twice", m.Name)
			}
			seen[m.Name] = true
			out = append(out, m)
		}
	}
	return out, errs.Err()
}

func (d *decoder) metric(n *yaml.Node) Metric {
	fs, node := d.fields(n, "metric", metricKeys)
	m := Metric{Node: node}
	ways := 0
	for _, f := range fs {
		key := "metric." + f.key
		switch f.key {
		case "name":
			m.Name = d.str(f.v, key)
			if m.Name != "" && !nameRE.MatchString(m.Name) {
				d.errorf(f.v, "%s: %q may only contain letters, digits, '_' and '-' (it names files)", key, m.Name)
			}
		case "files":
			m.Files = d.str(f.v, key)
			if _, err := path.Match(m.Files, ""); err != nil || path.IsAbs(m.Files) || m.Files == ".." || len(m.Files) > 2 && m.Files[:3] == "../" {
				d.errorf(f.v, "%s: %q is not a glob inside the run folder (such as experiment-results/sink/*.csv)", key, m.Files)
			}
		case "time_column":
			m.TimeColumn = d.str(f.v, key)
		case "csv_column":
			m.Column = d.str(f.v, key)
			ways++
		case "regex":
			s := d.str(f.v, key)
			re, err := regexp.Compile(s)
			if err != nil {
				d.errorf(f.v, "%s: %v", key, err)
			}
			m.Regex = re
			ways++
		case "lines":
			m.Lines = d.boolean(f.v, key)
			if m.Lines {
				ways++
			}
		case "unit":
			m.Unit = d.str(f.v, key)
		}
	}
	d.require(node, "metric", "name", "files")
	if m.TimeColumn != "" && m.Column == "" {
		d.errs.At(node.Pos, "metric %q: time_column needs csv_column", m.Name)
	}
	if ways != 1 && len(fs) > 0 {
		d.errs.At(node.Pos, "metric %q: expected exactly one of csv_column, regex or lines: true", m.Name)
	}
	return m
}
