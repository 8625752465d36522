// Command compare runs the benchmark suite of package bench in one process
// and prints one table: every workload at every -cpu value, ns/op and
// allocs/op per implementation, the ratio of each baseline to the watermark
// and of the watermark to the bare-atomic limits, and the bits each
// implementation holds per in-flight offset; then the scaling curves (cost
// per message as partitions, offsets in flight and ackers grow, watermark
// beside mutex+btree). It writes the tables to <out>/results.md and charts to
// <out>/chart.png and <out>/scaling.png.
//
//	go run ./bench/cmd/compare [-benchtime 300ms] [-cpu 1,2,4] [-out bench/results] [-run E2E] [-scaling=false]
//
// It takes about three minutes on a 2-core machine with the defaults; -run
// selects cases by group/name ("Scaling" the curves) and skips memory.
// The numbers of one run are comparable with each other; across runs and
// machines compare ratios. For statistics over repeated runs use the Go
// benchmarks and benchstat (golang.org/x/perf/cmd/benchstat):
//
//	go test -run '^$' -bench . -cpu 1,2,4 -count 10 ./bench/ | tee new.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl new.txt
//	go run golang.org/x/perf/cmd/benchstat@latest old.txt new.txt
package main

import (
	"bufio"
	"cmp"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inorder/inorder/bench"
)

func main() {
	testing.Init()
	benchtime := flag.Duration("benchtime", 300*time.Millisecond, "run each benchmark for this long")
	cpuList := flag.String("cpu", "1,2,4", "comma-separated GOMAXPROCS values (acking goroutines) for the parallel benchmarks")
	out := flag.String("out", "bench/results", "directory for results.md and chart.png (empty: do not write)")
	only := flag.String("run", "", "run only the cases whose group/name matches this regular expression (e.g. 'E2E'; 'Scaling' selects the curves); skips memory")
	count := flag.Int("count", 1, "run every case this many times, round-robin, and report the median (and the spread of the ratios)")
	scaling := flag.Bool("scaling", true, "measure the scaling curves (partitions, window, ackers) and draw scaling.png")
	flag.Parse()
	log.SetFlags(0)
	cpus, err := parseCPUs(*cpuList)
	if err != nil {
		log.Fatalf("compare: -cpu: %v", err)
	}
	if *benchtime <= 0 {
		log.Fatalf("compare: -benchtime must be positive, got %v", *benchtime)
	}
	if err := flag.Set("test.benchtime", benchtime.String()); err != nil {
		log.Fatal(err)
	}

	var filter *regexp.Regexp
	if *only != "" {
		if filter, err = regexp.Compile(*only); err != nil {
			log.Fatalf("compare: -run: %v", err)
		}
	}
	begin := time.Now()
	if *count < 1 {
		log.Fatalf("compare: -count must be positive, got %d", *count)
	}
	res, err := run(cpus, *count, filter, os.Stderr)
	if err != nil {
		log.Fatalf("compare: %v", err)
	}
	var curves []*curve
	if *scaling && (filter == nil || filter.MatchString("Scaling")) {
		if curves, err = runScaling(os.Stderr); err != nil {
			log.Fatalf("compare: %v", err)
		}
	}
	var sb strings.Builder
	writeReport(&sb, res, *benchtime, time.Since(begin))
	if curves != nil {
		writeScaling(&sb, curves)
	}
	fmt.Print(sb.String())
	if *out == "" {
		return
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatalf("compare: %v", err)
	}
	if err := os.WriteFile(filepath.Join(*out, "results.md"), []byte(sb.String()), 0o644); err != nil {
		log.Fatalf("compare: %v", err)
	}
	if len(res.rows) > 0 {
		if err := chart(res, filepath.Join(*out, "chart.png")); err != nil {
			log.Fatalf("compare: chart: %v", err)
		}
	}
	fmt.Fprintf(os.Stderr, "wrote %s and %s\n", filepath.Join(*out, "results.md"), filepath.Join(*out, "chart.png"))
	if curves != nil {
		if err := scalingChart(curves, filepath.Join(*out, "scaling.png")); err != nil {
			log.Fatalf("compare: scaling chart: %v", err)
		}
		fmt.Fprintf(os.Stderr, "wrote %s\n", filepath.Join(*out, "scaling.png"))
	}
}

func parseCPUs(s string) ([]int, error) {
	var cpus []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad value %q: want positive integers separated by commas", f)
		}
		cpus = append(cpus, n)
	}
	return cpus, nil
}

// rowKey identifies one row of the table.
type rowKey struct {
	group, workload string
	procs           int
}

// results holds every measurement of one run.
type results struct {
	rows   []rowKey
	cell   map[rowKey]map[string]testing.BenchmarkResult   // the median of the rounds
	rounds map[rowKey]map[string][]testing.BenchmarkResult // every round, in order
	count  int
	memory map[string]float64 // bytes per in-flight offset
}

func run(cpus []int, count int, filter *regexp.Regexp, progress io.Writer) (*results, error) {
	res := &results{cell: map[rowKey]map[string]testing.BenchmarkResult{},
		rounds: map[rowKey]map[string][]testing.BenchmarkResult{}, count: count, memory: map[string]float64{}}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	// Round-robin: each round runs every case once, a row's implementations
	// one after the other, so that each round's ratios compare runs made
	// close in time on a machine whose load changes.
	for round := range count {
		for _, c := range bench.Suite() {
			if filter != nil && !filter.MatchString(c.Group+"/"+c.Name()) {
				continue
			}
			procsList := cpus
			if !c.Parallel {
				procsList = []int{1}
			}
			for _, procs := range procsList {
				runtime.GOMAXPROCS(procs)
				k := rowKey{c.Group, c.Workload, procs}
				if res.rounds[k] == nil {
					res.rounds[k] = map[string][]testing.BenchmarkResult{}
					res.rows = append(res.rows, k)
				}
				r := testing.Benchmark(c.F)
				if r.N == 0 {
					return nil, fmt.Errorf("benchmark %s/%s at procs=%d failed (run go test -bench to see why)", c.Group, c.Name(), procs)
				}
				res.rounds[k][c.Impl] = append(res.rounds[k][c.Impl], r)
				fmt.Fprintf(progress, "%-12s %-36s procs=%d round %d %12.2f ns/op %4d allocs/op\n", c.Group, c.Name(), procs, round+1, nsPerOp(r), r.AllocsPerOp())
			}
		}
	}
	for k, byImpl := range res.rounds {
		res.cell[k] = map[string]testing.BenchmarkResult{}
		for im, rs := range byImpl {
			sorted := slices.Clone(rs)
			slices.SortFunc(sorted, func(a, b testing.BenchmarkResult) int { return cmp.Compare(nsPerOp(a), nsPerOp(b)) })
			res.cell[k][im] = sorted[len(sorted)/2]
		}
	}
	runtime.GOMAXPROCS(cpus[len(cpus)-1])
	if filter != nil {
		return res, nil
	}
	for _, im := range bench.Trackers {
		b, err := bench.Memory(im, bench.MemoryPartitions(im))
		if err != nil {
			return nil, err
		}
		res.memory[im] = b
		fmt.Fprintf(progress, "Memory       impl=%-31s %d partitions %9.3f bits/offset\n", im, bench.MemoryPartitions(im), b*8)
	}
	return res, nil
}

// spread returns the smallest and largest ratio num/den (ns/op) over the
// rounds of row k.
func (res *results) spread(k rowKey, num, den string) (lo, hi float64) {
	a, b := res.rounds[k][num], res.rounds[k][den]
	for i := range min(len(a), len(b)) {
		r := nsPerOp(a[i]) / nsPerOp(b[i])
		if i == 0 || r < lo {
			lo = r
		}
		if i == 0 || r > hi {
			hi = r
		}
	}
	return lo, hi
}

// nsPerOp is NsPerOp with sub-nanosecond precision.
func nsPerOp(r testing.BenchmarkResult) float64 {
	if r.N == 0 {
		return 0
	}
	return float64(r.T.Nanoseconds()) / float64(r.N)
}

var impls = append(append([]string{}, bench.Trackers...), bench.Limits...)

func writeReport(w io.Writer, res *results, benchtime, took time.Duration) {
	fmt.Fprintf(w, "# inorder: watermark vs baselines\n\n")
	fmt.Fprintf(w, "- CPU: %s, %d cores (GOMAXPROCS per row: procs)\n", cpuModel(), runtime.NumCPU())
	fmt.Fprintf(w, "- Go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "- Date: %s; benchtime %v per benchmark, %d round(s) (median shown); run took %v; load average at end: %s\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), benchtime, res.count, took.Round(time.Second), loadAvg())
	fmt.Fprintf(w, "- Command: `%s`\n\n", strings.Join(append([]string{"go run ./bench/cmd/compare"}, os.Args[1:]...), " "))
	fmt.Fprintf(w, "ns/op: Ack = one Ack by one of procs goroutines; Track = one Track; Committable = one read while the head is stuck; ")
	fmt.Fprintf(w, "E2E = one offset tracked by one producer, acked by procs ackers, committed (or: the same harness with a bare atomic store per Track and Or per Ack). Memory row: bits per in-flight offset. ")
	fmt.Fprintf(w, "x/wm = baseline ns / watermark ns (higher: watermark faster); wm/or, wm/add = watermark ns / bare atomic ns (the physical limit).\n\n")

	fmt.Fprintf(w, "| benchmark | workload | procs |")
	for _, im := range impls {
		fmt.Fprintf(w, " %s ns/op | allocs |", im)
	}
	fmt.Fprintf(w, " btree/wm | heap/wm | actor/wm | wm/or | wm/add |\n|---|---|---|")
	for range impls {
		fmt.Fprintf(w, "--:|--:|")
	}
	fmt.Fprintf(w, "--:|--:|--:|--:|--:|\n")
	for _, k := range res.rows {
		c := res.cell[k]
		fmt.Fprintf(w, "| %s | %s | %d |", k.group, k.workload, k.procs)
		for _, im := range impls {
			if r, ok := c[im]; ok {
				fmt.Fprintf(w, " %s | %d |", fmtNs(nsPerOp(r)), r.AllocsPerOp())
			} else {
				fmt.Fprintf(w, " | |")
			}
		}
		wm := nsPerOp(c["watermark"])
		for _, im := range []string{"btree", "heap", "actor"} {
			fmt.Fprintf(w, " %s |", ratio(nsPerOp(c[im]), wm))
		}
		for _, im := range bench.Limits {
			fmt.Fprintf(w, " %s |", ratio(wm, nsPerOp(c[im])))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "| Memory (bits/offset) | full window x %d partitions (baselines: %d) | - |",
		bench.MemoryPartitions("watermark"), bench.MemoryPartitions("btree"))
	for _, im := range impls {
		if b, ok := res.memory[im]; ok {
			fmt.Fprintf(w, " %.2f | |", b*8)
		} else {
			fmt.Fprintf(w, " | |")
		}
	}
	for _, im := range []string{"btree", "heap", "actor"} {
		fmt.Fprintf(w, " %s |", ratio(res.memory[im], res.memory["watermark"]))
	}
	fmt.Fprintf(w, " | |\n\n")
	writeFigures(w, res)
}

// writeFigures checks issue 2's figures against this run.
func writeFigures(w io.Writer, res *results) {
	fmt.Fprintf(w, "Issue 2 figures, this run:\n\n")
	check := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	for _, k := range res.rows {
		c := res.cell[k]
		wm := nsPerOp(c["watermark"])
		switch {
		case k.group == "E2E" && k.workload == "-":
			r := nsPerOp(c["btree"]) / wm
			fmt.Fprintf(w, "- end to end, procs=%d: watermark %.1fx mutex+btree (%.1f vs %.1f Moffsets/s; want >= 10x): %s",
				k.procs, r, 1e3/wm, 1e3/nsPerOp(c["btree"]), check(r >= 10))
			if or := nsPerOp(c["or"]); or > 0 {
				fmt.Fprintf(w, " (the bare limit in the same harness, an atomic store of the high mark per Track and an Or per Ack, is %.1fx mutex+btree; watermark is %.2fx its time)",
					nsPerOp(c["btree"])/or, wm/or)
			}
			fmt.Fprintln(w)
		case k.group == "Ack":
			if k.procs > 1 {
				r := wm / nsPerOp(c["or"])
				fmt.Fprintf(w, "- parallel Ack %s, procs=%d: %.2fx the bare Or loop (want <= 2x): %s\n", k.workload, k.procs, r, check(r <= 2))
			}
		}
	}
	fmt.Fprintf(w, "\nIssue 14 figures, this run (batch: TrackBatch of a 256-offset slice; range: TrackRange of its bounds; "+
		"the baselines take their lock once per batch; the or limit stores the high mark once per batch, then one Or per ack):\n\n")
	for _, k := range res.rows {
		if k.group != "E2E" || k.workload == "-" {
			continue
		}
		c := res.cell[k]
		wm := nsPerOp(c["watermark"])
		if wm == 0 {
			continue
		}
		each := res.cell[rowKey{"E2E", "-", k.procs}]
		vsBatch, vsEach := nsPerOp(c["btree"])/wm, nsPerOp(each["btree"])/wm
		vsOr := wm / nsPerOp(c["or"])
		loB, hiB := res.spread(k, "btree", "watermark")
		loO, hiO := res.spread(k, "watermark", "or")
		fmt.Fprintf(w, "- end to end, %s, procs=%d: watermark %.1f Moffsets/s; %.1fx mutex+btree batched (rounds %.1f-%.1fx; %.1fx its per-offset row; want >= 15x): %s; "+
			"%.2fx the bare limit for the same batches (rounds %.2f-%.2fx; want <= 1.3x): %s; %.2fx faster per offset than per-offset Track\n",
			k.workload, k.procs, 1e3/wm, vsBatch, loB, hiB, vsEach, check(vsBatch >= 15), vsOr, loO, hiO, check(vsOr <= 1.3), nsPerOp(each["watermark"])/wm)
	}
	allocs := int64(0)
	for _, k := range res.rows {
		if k.group == "Ack" || k.group == "Track" || k.group == "Committable" {
			allocs += res.cell[k]["watermark"].AllocsPerOp()
		}
	}
	fmt.Fprintf(w, "- allocs/op of watermark Track, Ack, Committable (sum over rows): %d (want 0): %s\n", allocs, check(allocs == 0))
	if bits := res.memory["watermark"] * 8; bits > 0 {
		fmt.Fprintf(w, "- watermark memory: %.2f bits per in-flight offset (want <= 2): %s\n", bits, check(bits <= 2))
	}
}

func fmtNs(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return ""
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64) + "x"
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown (" + runtime.GOARCH + ")"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown (" + runtime.GOARCH + ")"
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
