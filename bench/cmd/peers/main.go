// Command peers runs this module's three adapters side by side with the Go
// consumers teams pick today, against the embedded broker, with the same
// topic, the same handlers and the same machine, and prints one table
// (issue 24):
//
//   - watermill-kafka (github.com/ThreeDotsLabs/watermill-kafka/v3, sarama
//     underneath): a Subscriber in a consumer group, its channel read by
//     -concurrency goroutines, each message Acked after the handler;
//   - goka (github.com/lovoo/goka): a processor with one input stream, one
//     partition processor per partition, the callback of its README;
//   - goka-defercommit: the same with Context.DeferCommit, the callback
//     handing each message to a pool of -concurrency workers;
//   - sarama-pool: a hand-rolled github.com/IBM/sarama ConsumerGroup whose
//     claims feed one pool of -concurrency workers, each marking
//     (MarkMessage) the message it finished;
//   - inorder/kafkago, inorder/confluent, inorder/franz: this module's
//     adapters with their default options (Concurrency 16).
//
// Throughput: the backlog (-messages over -partitions) is produced once;
// each row consumes it in a fresh group, in a process of its own (this
// binary re-executed with -member), until it has handled -messages or
// -duration has passed since its first message, on each workload: a no-op
// handler, one that sleeps 1 ms, and one that sleeps 1 ms except every
// 100th offset of a partition, which sleeps 300 ms. Columns: messages per
// second from the first handler call to the stop, the ratio to the best of
// the three adapters on that workload, and the member's peak RSS (VmHWM).
//
// Crash loop: per row, the churn harness of bench/cmd/chaos
// (internal/kafkatest/churn) with -members member processes of the row in
// one group, -crash.messages messages, handlers of 1 ms with 1% at 300 ms,
// -kills members SIGKILLed and replaced, then the run goes to the end
// (every partition's commit at the log end) and every member is stopped
// with SIGTERM. Kill i waits until i/(kills+1) of the messages were
// handled and 0.5-1.5 s since the kill before, so that the kills spread
// over the run of a fast row and of a slow one alike; only a member that
// has been handling messages for 2 s (two commit intervals of every row)
// is killed. Columns: kills done, messages lost (below the group's final
// commit, never handled), duplicates (handled more than once), and
// commits gone backwards (the group's committed offset of a partition
// went down).
//
// The default run takes 5-6 minutes on a 2-core machine: -duration,
// -messages, -crash.messages, -rows, -workloads and -crash=false shrink it.
//
// The peers and their clients live in this directory's own module, so that
// the library's go.mod does not carry them. From the repository root:
//
//	go -C bench/cmd/peers run .
//	go -C bench/cmd/peers run . -duration 20s -crash.messages 80000
//	go -C bench/cmd/peers run . -rows goka,inorder/franz -workloads 1ms -crash=false
//
// It measures on Linux only (it reads /proc) and needs cgo (the confluent
// adapter).
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
	"strings"
	"time"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/churn"
)

const topic = "peers"

func main() {
	var m memberSpec
	flag.StringVar(&m.Row, "member", "", "internal: run as a throughput member of this row")
	flag.StringVar(&m.Workload, "m.workload", "", "internal: member: workload")
	flag.StringVar(&m.Brokers, "m.brokers", "", "internal: member: broker addresses, comma-separated")
	flag.StringVar(&m.Topic, "m.topic", topic, "internal: member: topic")
	flag.StringVar(&m.Group, "m.group", "", "internal: member: group")
	flag.IntVar(&m.Concurrency, "m.concurrency", 16, "internal: member: handler goroutines")
	flag.Int64Var(&m.Messages, "m.messages", 0, "internal: member: stop after this many messages")
	flag.DurationVar(&m.Duration, "m.duration", 0, "internal: member: stop this long after the first message")
	crashMember := flag.String("crashmember", "", "internal: run as a crash-loop member of this row")

	var c config
	flag.StringVar(&c.rows, "rows", strings.Join(rowNames(), ","), "rows to run, comma-separated")
	flag.StringVar(&c.workloads, "workloads", strings.Join(workloadNames(), ","), "throughput workloads, comma-separated (empty: none)")
	flag.IntVar(&c.messages, "messages", 200000, "throughput: messages in the backlog, and each consumer's stop")
	flag.IntVar(&c.partitions, "partitions", 8, "partitions of the topic")
	flag.IntVar(&c.size, "size", 100, "throughput: bytes per message value")
	flag.DurationVar(&c.duration, "duration", 8*time.Second, "throughput: stop a consumer this long after its first message, if it has not handled -messages by then")
	flag.IntVar(&c.concurrency, "concurrency", kafkago.DefaultConcurrency, "handler goroutines: the adapters' WithConcurrency (16 is their default), watermill's channel readers, the workers of sarama-pool and goka-defercommit")
	flag.BoolVar(&c.crash, "crash", true, "run the crash loop")
	flag.IntVar(&c.crashMessages, "crash.messages", 40000, "crash loop: messages")
	flag.IntVar(&c.kills, "kills", 5, "crash loop: members SIGKILLed and replaced")
	flag.IntVar(&c.members, "members", 3, "crash loop: live member processes")
	flag.BoolVar(&c.keep, "keep", false, "crash loop: keep every run's directory (those with findings are always kept)")
	flag.BoolVar(&c.verbose, "v", false, "pass the members' logs through, print the crash loop's events")
	flag.Parse()

	switch {
	case m.Row != "":
		os.Exit(memberMain(m, c.verbose))
	case *crashMember != "" || churn.IsMember():
		i := slices.IndexFunc(rows, func(r row) bool { return r.name == *crashMember })
		if i < 0 {
			fmt.Fprintf(os.Stderr, "peers: unknown crash member row %q\n", *crashMember)
			os.Exit(2)
		}
		os.Exit(churn.MemberMain(rows[i].consume))
	}
	if err := run(c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
}

// config is the command's flags.
type config struct {
	rows, workloads                  string
	messages, partitions, size       int
	duration                         time.Duration
	concurrency                      int
	crash                            bool
	crashMessages, kills, members    int
	keep, verbose                    bool
	chosenRows                       []row      // from rows
	chosenWorkloads                  []workload // from workloads
	crashHandler, crashSlow          time.Duration
	crashSlowFraction                float64
	crashSession, crashRebalance     time.Duration
	crashRevoke, crashHeartbeatIntvl time.Duration
	crashTimeout                     time.Duration
	killMin, killMax, killMinAge     time.Duration
	settleAfter                      time.Duration
	throughputGuard                  time.Duration
}

// parse checks the flags and fills the chosen rows and workloads.
func (c *config) parse() error {
	if c.messages < 1 || c.partitions < 1 || c.size < 1 || c.duration <= 0 || c.concurrency < 1 ||
		c.crashMessages < 1 || c.kills < 0 || c.members < 1 {
		return fmt.Errorf("-messages %d, -partitions %d, -size %d, -duration %v, -concurrency %d, -crash.messages %d, -kills %d, -members %d: want all > 0 (kills >= 0)",
			c.messages, c.partitions, c.size, c.duration, c.concurrency, c.crashMessages, c.kills, c.members)
	}
	c.chosenRows = nil
	for name := range strings.SplitSeq(c.rows, ",") {
		i := slices.IndexFunc(rows, func(r row) bool { return r.name == strings.TrimSpace(name) })
		if i < 0 {
			return fmt.Errorf("-rows: unknown row %q (known: %s)", name, strings.Join(rowNames(), ", "))
		}
		c.chosenRows = append(c.chosenRows, rows[i])
	}
	c.chosenWorkloads = nil
	if c.workloads != "" {
		for name := range strings.SplitSeq(c.workloads, ",") {
			i := slices.IndexFunc(workloads, func(w workload) bool { return w.name == strings.TrimSpace(name) })
			if i < 0 {
				return fmt.Errorf("-workloads: unknown workload %q (known: %s)", name, strings.Join(workloadNames(), ", "))
			}
			c.chosenWorkloads = append(c.chosenWorkloads, workloads[i])
		}
	}
	c.crashHandler, c.crashSlow, c.crashSlowFraction = time.Millisecond, 300*time.Millisecond, 0.01
	// The churn harness's timeouts (bench/cmd/chaos's defaults), for every
	// row: session 3s, rebalance 6s, revoke 4s (adapters), heartbeat 1s.
	c.crashSession, c.crashRebalance, c.crashRevoke, c.crashHeartbeatIntvl = 3*time.Second, 6*time.Second, 4*time.Second, time.Second
	c.crashTimeout = 10 * time.Minute
	// Kill i waits for i/(kills+1) of the messages handled and 0.5-1.5s
	// since the kill before: the kills spread over every row's run, fast or
	// slow.
	c.killMin, c.killMax = 500*time.Millisecond, 1500*time.Millisecond
	// A member is killed only once it has been handling for 2s: two commit
	// intervals of every row (the adapters' CommitInterval, sarama's
	// auto-commit interval), as a long-lived process would be.
	c.killMinAge = 2 * time.Second
	// Run to the end: a partition whose every message was handled is done
	// only when its commit reaches the log end, or after 15s without
	// progress (the harness's default, 3s, would stop the members while a
	// dead member's partitions wait for its session to expire, and report
	// their commits short).
	c.settleAfter = 15 * time.Second
	c.throughputGuard = c.duration + 2*time.Minute // the join, the run, the close
	return nil
}

// report is everything one run of the command measured.
type report struct {
	throughput map[string]map[string]outcome // row, workload
	failed     map[string]map[string]string  // row, workload: why there is no figure
	crash      map[string]churn.Result
	crashErr   map[string]string
}

func run(c config, out io.Writer) error {
	if err := c.parse(); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Fprintf(out, "peers: %s, %s %s/%s, %d CPUs (%s), load average %s\n", time.Now().UTC().Format(time.RFC3339),
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel(), loadAverage())
	rep := report{
		throughput: map[string]map[string]outcome{}, failed: map[string]map[string]string{},
		crash: map[string]churn.Result{}, crashErr: map[string]string{},
	}
	if len(c.chosenWorkloads) > 0 {
		if err := runThroughput(ctx, c, exe, &rep); err != nil {
			return err
		}
	}
	if c.crash {
		if err := runCrash(ctx, c, exe, &rep); err != nil {
			return err
		}
	}
	printTable(out, c, rep)
	fmt.Fprintf(out, "done %s, load average %s (the machine's, other processes included)\n",
		time.Now().UTC().Format(time.RFC3339), loadAverage())
	return nil
}

// loadAverage returns the 1, 5 and 15 minute load averages of
// /proc/loadavg, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// runThroughput produces the backlog and runs every chosen row on every
// chosen workload, rows taking turns within a workload.
func runThroughput(ctx context.Context, c config, exe string, rep *report) error {
	cl, err := kafkatest.New(kafkatest.WithTopic(topic, int32(c.partitions)))
	if err != nil {
		return err
	}
	defer cl.Close()
	start := time.Now()
	if _, err := cl.Produce(ctx, topic, c.messages, kafkatest.ValueSize(c.size)); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "throughput: %d messages of %d B over %d partitions produced in %v\n",
		c.messages, c.size, c.partitions, time.Since(start).Round(time.Millisecond))
	var stderr io.Writer
	if c.verbose {
		stderr = os.Stderr
	}
	for _, w := range c.chosenWorkloads {
		for _, r := range c.chosenRows {
			s := memberSpec{
				Row: r.name, Workload: w.name, Brokers: strings.Join(cl.Addrs(), ","), Topic: topic,
				Group:       "peers-" + strings.ReplaceAll(r.name, "/", "-") + "-" + w.name,
				Concurrency: c.concurrency, Messages: int64(c.messages), Duration: c.duration,
			}
			mctx, cancel := context.WithTimeout(ctx, c.throughputGuard)
			o, err := runMember(mctx, exe, s, stderr)
			cancel()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if rep.throughput[r.name] == nil {
				rep.throughput[r.name], rep.failed[r.name] = map[string]outcome{}, map[string]string{}
			}
			if err != nil {
				rep.failed[r.name][w.name] = err.Error()
				fmt.Fprintf(os.Stderr, "  %s %s: %v\n", w.name, r.name, err)
				continue
			}
			rep.throughput[r.name][w.name] = o
			note := ""
			if o.Result.CloseTimeout {
				note = " (did not close within 30s)"
			}
			fmt.Fprintf(os.Stderr, "  %s %s: %d in %v, %.0f msg/s, peak RSS %s%s\n", w.name, r.name,
				o.Result.Handled, o.Result.Wall.Round(time.Millisecond), o.Result.Rate(), mib(o.HWM), note)
		}
	}
	return nil
}

// runCrash runs the crash loop for every chosen row.
func runCrash(ctx context.Context, c config, exe string, rep *report) error {
	for _, r := range c.chosenRows {
		dir, err := os.MkdirTemp("", "peers-crash-")
		if err != nil {
			return err
		}
		cfg := churn.Config{
			Command: []string{exe, "-crashmember=" + r.name}, Dir: dir,
			Adapter: r.name, Protocol: defaultProtocol(r.name),
			Members: c.members, Partitions: int32(c.partitions), Messages: c.crashMessages,
			Kills: c.kills, KillOnly: true, KillAtProgress: true, KillMin: c.killMin, KillMax: c.killMax,
			KillMinAge: c.killMinAge, SettleAfter: c.settleAfter,
			HandlerMin: c.crashHandler, HandlerMax: c.crashHandler,
			SlowFraction: c.crashSlowFraction, Slow: c.crashSlow,
			Concurrency:    c.concurrency,
			SessionTimeout: c.crashSession, RebalanceTimeout: c.crashRebalance,
			RevokeTimeout: c.crashRevoke, HeartbeatInterval: c.crashHeartbeatIntvl,
			Timeout: c.crashTimeout,
		}
		if c.verbose {
			cfg.Logf = func(format string, args ...any) {
				fmt.Fprintf(os.Stderr, "  crash %s: %s\n", r.name, fmt.Sprintf(format, args...))
			}
		}
		res, err := churn.Run(ctx, cfg)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			rep.crashErr[r.name] = err.Error()
			fmt.Fprintf(os.Stderr, "  crash %s: %v (files in %s)\n", r.name, err, dir)
			continue
		}
		rep.crash[r.name] = res
		fmt.Fprintf(os.Stderr, "  crash %s\n", res)
		if (res.OK() || onlyExpected(res)) && !c.keep {
			os.RemoveAll(dir)
			continue
		}
		for _, p := range res.Problems(3) {
			fmt.Fprintf(os.Stderr, "    %s\n", p)
		}
		fmt.Fprintf(os.Stderr, "    files: %s\n", dir)
	}
	return nil
}

// onlyExpected reports whether a run's findings are only what the table
// shows (lost messages, rewinds, a final commit short because of them).
func onlyExpected(r churn.Result) bool {
	return len(r.Stalls) == 0 && !r.BrokerBug() && len(r.Hung) == 0 && len(r.Failed) == 0 &&
		r.Aborted == "" && len(r.Short) == 0
}

func mib(b uint64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// cpuModel returns the first "model name" of /proc/cpuinfo.
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
