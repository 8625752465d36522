// Command memory measures the peak resident set of a consumer process that
// consumes a backlog, for each adapter of this module and, beside each, its
// client's plain loop (issue 19: memory bounded by bytes, not offsets).
//
// The embedded broker runs in a process of its own (this binary with a
// hidden -broker flag), which produces the backlog into its memory and
// prints its address; each consumer runs in a member process (this binary
// re-executed with a hidden -member flag), one at a time, each in a fresh
// group from the start of the backlog. The parent reads the member's VmRSS
// in /proc/<pid>/status every -interval and its VmHWM at the end; the
// member reports what it handled and its handlers' busy fraction: the time
// spent in handlers over concurrency x the wall time from its first
// handler call to its stop. A member stops when it has handled the backlog
// (or -messages), or -duration after its first message.
//
// Rows: the kafkago, confluent and franz adapters (default options but the
// concurrency, Run with a handler that sleeps -handler) and their clients'
// plain loops with the clients' defaults, feeding as many workers through
// a channel: kafka-go's Reader with a GroupID (each worker commits the
// message it handled), confluent's Poll loop and kgo's PollFetches loop
// (both auto-committing).
//
// Columns: the peak RSS (VmHWM); the RSS at a few times since the member
// started; the peaks of the Go heap's objects and of the memory the Go
// runtime holds (sampled by the member every 20 ms: the RSS beyond it is
// C memory, librdkafka's, or the binary); the peak of the messages the
// adapter holds fetched and not yet handled (the Pending of its Stats,
// times the message size); messages handled, per second of wall time, and
// the handlers' busy fraction (the goal of issue 19: peak RSS <= 256 MiB
// with handlers >= 85% busy).
//
//	go run ./bench/cmd/memory
//	go run ./bench/cmd/memory -scenarios 8x20000 -rows kafkago,plain-kafkago -duration 10s
//
// Measures on Linux only (it reads /proc).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// allRows is every row, in the table's order: each adapter beside its
// client's plain loop.
var allRows = []string{"kafkago", "plain-kafkago", "confluent", "plain-confluent", "franz", "plain-franz"}

func main() {
	// Hidden: the broker and member processes.
	broker := flag.Bool("broker", false, "internal: run as the broker process")
	bTopic := flag.String("b.topic", "backlog", "internal: broker: topic")
	bParts := flag.Int("b.partitions", 8, "internal: broker: partitions")
	bMsgs := flag.Int("b.messages", 20000, "internal: broker: messages per partition")
	bSize := flag.Int("b.size", 4096, "internal: broker: value bytes")
	var m spec
	flag.StringVar(&m.Row, "member", "", "internal: run as a member process of this row")
	flag.StringVar(&m.Brokers, "m.brokers", "", "internal: member: broker address")
	flag.StringVar(&m.Topic, "m.topic", "", "internal: member: topic")
	flag.StringVar(&m.Group, "m.group", "", "internal: member: group")
	flag.IntVar(&m.Concurrency, "m.concurrency", 16, "internal: member: handler goroutines")
	flag.DurationVar(&m.Handler, "m.handler", 5*time.Millisecond, "internal: member: handler sleep")
	flag.DurationVar(&m.Duration, "m.duration", 20*time.Second, "internal: member: stop after, from the first message")
	flag.Int64Var(&m.Stop, "m.stop", 0, "internal: member: stop after this many messages")
	flag.Int64Var(&m.MaxBuffered, "m.maxbuffered", 0, "internal: member: WithMaxBufferedBytes (0: default)")

	scenarios := flag.String("scenarios", "8x20000,32x5000", "backlogs to consume, comma-separated: partitions x messages per partition")
	size := flag.Int("size", 4096, "bytes per message value")
	handler := flag.Duration("handler", 5*time.Millisecond, "time each handler call sleeps")
	concurrency := flag.Int("concurrency", 16, "handler goroutines (the adapters' WithConcurrency, the plain loops' workers)")
	duration := flag.Duration("duration", 20*time.Second, "stop each consumer this long after its first message (or when it is done)")
	messages := flag.Int64("messages", 0, "stop each consumer after this many messages (0: the whole backlog)")
	rows := flag.String("rows", strings.Join(allRows, ","), "rows to run, comma-separated")
	maxBuffered := flag.Int64("maxbuffered", 0, "the adapters' WithMaxBufferedBytes (0: the default, 64 MiB)")
	interval := flag.Duration("interval", 100*time.Millisecond, "how often the member's VmRSS is read")
	verbose := flag.Bool("v", false, "pass the member processes' stderr through")
	flag.Parse()

	switch {
	case *broker:
		os.Exit(brokerMain(*bTopic, *bParts, *bMsgs, *bSize))
	case m.Row != "":
		os.Exit(memberMain(m))
	}
	cfg := config{
		size: *size, handler: *handler, concurrency: *concurrency, duration: *duration,
		messages: *messages, maxBuffered: *maxBuffered, interval: *interval, verbose: *verbose,
	}
	if err := run(*scenarios, *rows, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "memory:", err)
		os.Exit(1)
	}
}

type config struct {
	size        int
	handler     time.Duration
	concurrency int
	duration    time.Duration
	messages    int64
	maxBuffered int64
	interval    time.Duration
	verbose     bool
}

type scenario struct{ partitions, perPartition int }

func parseScenarios(s string) ([]scenario, error) {
	var out []scenario
	for f := range strings.SplitSeq(s, ",") {
		a, b, ok := strings.Cut(strings.TrimSpace(f), "x")
		p, err1 := strconv.Atoi(a)
		n, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || p < 1 || n < 1 {
			return nil, fmt.Errorf("-scenarios: %q is not partitions x messages, like 8x20000", f)
		}
		out = append(out, scenario{p, n})
	}
	return out, nil
}

func run(scenarioList, rowList string, cfg config) error {
	scs, err := parseScenarios(scenarioList)
	if err != nil {
		return err
	}
	var chosen []string
	for r := range strings.SplitSeq(rowList, ",") {
		r = strings.TrimSpace(r)
		if !slices.Contains(allRows, r) {
			return fmt.Errorf("-rows: unknown row %q (known: %s)", r, strings.Join(allRows, ", "))
		}
		chosen = append(chosen, r)
	}
	if cfg.size < 1 || cfg.concurrency < 1 || cfg.duration <= 0 || cfg.interval <= 0 || cfg.messages < 0 || cfg.maxBuffered < 0 {
		return fmt.Errorf("-size %d, -concurrency %d, -duration %v, -interval %v, -messages %d, -maxbuffered %d: want size, concurrency, duration, interval > 0 and messages, maxbuffered >= 0",
			cfg.size, cfg.concurrency, cfg.duration, cfg.interval, cfg.messages, cfg.maxBuffered)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	budget := "default (64 MiB)"
	if cfg.maxBuffered > 0 {
		budget = mib(uint64(cfg.maxBuffered))
	}
	fmt.Printf("memory: %s, %s %s/%s, GOMAXPROCS %d, %d CPUs, %s\n", time.Now().UTC().Format(time.RFC3339),
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.NumCPU(), cpuModel())
	fmt.Printf("options: values of %d bytes (uncompressed), handler sleeps %v, concurrency %d, each consumer stops after %v from its first message or when done (messages cap %d), adapters' MaxBufferedBytes %s, other options the defaults; RSS read every %v\n",
		cfg.size, cfg.handler, cfg.concurrency, cfg.duration, cfg.messages, budget, cfg.interval)
	var stderr io.Writer
	if cfg.verbose {
		stderr = os.Stderr
	}
	for _, sc := range scs {
		total := int64(sc.partitions * sc.perPartition)
		fmt.Printf("\n%d partitions x %d messages x %d B = %s backlog\n", sc.partitions, sc.perPartition, cfg.size,
			mib(uint64(total)*uint64(cfg.size)))
		addr, stopBroker, err := startBroker(ctx, exe, "backlog", sc.partitions, sc.perPartition, cfg.size)
		if err != nil {
			return err
		}
		var outs []outcome
		for i, row := range chosen {
			s := spec{
				Row: row, Brokers: addr, Topic: "backlog", Group: fmt.Sprintf("memory-%s-%d", row, i),
				Concurrency: cfg.concurrency, Handler: cfg.handler, Duration: cfg.duration,
				Stop: total, MaxBuffered: cfg.maxBuffered,
			}
			if cfg.messages > 0 {
				s.Stop = min(total, cfg.messages)
			}
			// A hang guard: the join, the run and the drain.
			mctx, cancel := context.WithTimeout(ctx, cfg.duration+2*time.Minute)
			o, err := runMember(mctx, exe, s, cfg.interval, stderr)
			cancel()
			if err != nil {
				stopBroker()
				return err
			}
			outs = append(outs, o)
			fmt.Fprintf(os.Stderr, "  %s: peak %s, %d handled\n", row, mib(o.Peak()), o.Result.Handled)
		}
		stopBroker()
		printTable(chosen, outs, cfg)
	}
	return nil
}

// printTable prints one scenario's markdown table.
func printTable(rows []string, outs []outcome, cfg config) {
	at := []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 20 * time.Second}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprint(w, "| consumer\t peak RSS (VmHWM)\t")
	for _, d := range at {
		fmt.Fprintf(w, " RSS at %v\t", d)
	}
	fmt.Fprintln(w, " RSS at the end\t Go heap / mapped peak\t pending peak x size\t handled\t msg/s\t handler busy\t first message at\t")
	fmt.Fprint(w, "|---\t--:\t")
	for range at {
		fmt.Fprint(w, "--:\t")
	}
	fmt.Fprintln(w, "--:\t--:\t--:\t--:\t--:\t--:\t--:\t")
	for i, o := range outs {
		fmt.Fprintf(w, "| %s\t %s\t", rows[i], mib(o.Peak()))
		for _, d := range at {
			if rss, ok := o.At(d); ok {
				fmt.Fprintf(w, " %s\t", mib(rss))
			} else {
				fmt.Fprint(w, " –\t")
			}
		}
		if n := len(o.Samples); n > 0 {
			fmt.Fprintf(w, " %s (%.0fs)\t", mib(o.Samples[n-1].RSS), o.Samples[n-1].At.Seconds())
		} else {
			fmt.Fprint(w, " –\t")
		}
		r := o.Result
		rate := 0.0
		if r.Wall > 0 {
			rate = float64(r.Handled) / r.Wall.Seconds()
		}
		pending := "–" // the plain loops have no Stats
		if r.Pending > 0 {
			pending = mib(uint64(r.Pending) * uint64(cfg.size))
		}
		fmt.Fprintf(w, " %.0f / %s\t %s\t %d\t %.0f\t %.1f%%\t %.2fs\t\n", float64(r.GoHeap)/(1<<20), mib(r.GoMapped), pending, r.Handled, rate,
			100*r.BusyFraction(cfg.concurrency), o.First.Seconds())
	}
	w.Flush()
}

func mib(b uint64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// cpuModel returns the first "model name" of /proc/cpuinfo, or "unknown".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "CPU unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "CPU unknown"
}
