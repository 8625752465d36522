// Command chaos runs the group-churn scenario of issue 9 (package
// internal/kafkatest/churn) against the embedded broker, started in this
// process, for each consumer and prints a table: 3 member processes (this
// binary re-executed with a hidden -member flag), 4 partitions, 40,000
// messages, handlers of 10–30 ms, 4 members SIGKILLed or SIGTERMed and
// replaced 1.5–4 s apart, then all stopped with SIGTERM.
//
// Rows: the kafka-go adapter (eager), the confluent adapter with EAGER and
// with COOPERATIVE rebalancing, and "naive": a kafka-go Reader with a
// GroupID and 16 workers each committing the message it finished.
//
//	go run ./bench/cmd/chaos -runs 20
//	go run ./bench/cmd/chaos -runs 3 -defaults -adapters kafkago,naive
//	go run ./bench/cmd/chaos -runs 20 -keys 200 -adapters kafkago,confluent-eager,confluent-cooperative,franz-eager,franz-cooperative
//
// With -faults it runs the broker-fault scenario of issue 25 instead
// (faults.go): 3 brokers, broker faults and frozen members on top of the
// churn, ByKey in every other run, for the five adapter rows by default,
// and a table of duplicates per fault and per kill against their bound:
//
//	go run ./bench/cmd/chaos -faults -runs 4
//
// With -defaults the members keep their client's default timeouts (kafka-go
// adapter and Reader: session 30s, rebalance 30s; confluent: session 45s,
// max.poll.interval 5min) and a stall is no progress for the session
// timeout + 30s; otherwise the rebalance timeout is 6s (session 3s, revoke
// 4s, heartbeat 1s) and a stall is 30s without progress.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest/churn"
	"github.com/inorder/inorder/internal/kafkatest/churn/cfmember"
	"github.com/inorder/inorder/internal/kafkatest/churn/frmember"
	"github.com/inorder/inorder/internal/kafkatest/churn/kgmember"
	"github.com/inorder/inorder/internal/kafkatest/churn/naive"
)

// row is one line of the table: a member kind.
type row struct {
	name     string
	consume  churn.Consume
	protocol string
	session  time.Duration // the client's default session timeout
}

var rows = []row{
	{"kafkago", kgmember.Consume, "eager", kafkago.DefaultSessionTimeout},
	{"confluent-eager", cfmember.Consume, "eager", confluent.DefaultSessionTimeout},
	{"confluent-cooperative", cfmember.Consume, "cooperative", confluent.DefaultSessionTimeout},
	{"franz-eager", frmember.Consume, "eager", franz.DefaultSessionTimeout},
	{"franz-cooperative", frmember.Consume, "cooperative", franz.DefaultSessionTimeout},
	{"naive", naive.Consume, "eager", 30 * time.Second}, // kafka-go ReaderConfig.SessionTimeout default
}

func main() {
	member := flag.String("member", "", "internal: run as a member process of this row")
	runs := flag.Int("runs", 5, "runs per row")
	messages := flag.Int("messages", 40000, "messages per run")
	kills := flag.Int("kills", 4, "members killed or stopped and replaced per run")
	adapters := flag.String("adapters", "kafkago,confluent-eager,confluent-cooperative,franz-eager,franz-cooperative,naive", "rows to run, comma-separated")
	defaults := flag.Bool("defaults", false, "members keep their client's default timeouts")
	keep := flag.Bool("keep", false, "keep every run's directory (failed runs' are always kept)")
	verbose := flag.Bool("v", false, "print each run's events")
	timeout := flag.Duration("timeout", 10*time.Minute, "bound on one run")
	keys := flag.Int("keys", 0, "messages with this many keys, handled ByKey by the adapters (0: keyless, Unordered; with -faults: 200 keys in every other run)")
	faults := flag.Bool("faults", false, "the broker-fault scenario (faults.go): 3 brokers, broker faults and frozen members on top of the churn, ByKey in every other run")
	faultFor := flag.Duration("fault-for", 25*time.Second, "with -faults: how long the faults go on in each run")
	rolling := flag.Bool("rolling", false, "run the rolling restart of static members instead (membership.go)")
	rollingRowsFlag := flag.String("rolling-rows", "franz-static,franz-dynamic,confluent-static,confluent-dynamic,kafkago-static,kafkago-dynamic", "rows of -rolling, comma-separated")
	flag.Parse()

	if *member != "" || churn.IsMember() {
		i := slices.IndexFunc(rows, func(r row) bool { return r.name == *member })
		if i < 0 {
			fmt.Fprintf(os.Stderr, "chaos: unknown member kind %q\n", *member)
			os.Exit(2)
		}
		os.Exit(churn.MemberMain(rows[i].consume))
	}
	if *faults {
		names := faultRowNames
		flag.Visit(func(f *flag.Flag) {
			if f.Name == "adapters" {
				names = *adapters
			}
		})
		chosen, err := chooseRows(names)
		if err == nil {
			err = runFaults(faultOpts{runs: *runs, messages: *messages, kills: *kills, keys: *keys,
				adapters: chosen, faultFor: *faultFor, keep: *keep, verbose: *verbose, timeout: *timeout})
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			os.Exit(1)
		}
		return
	}
	if *rolling {
		if err := runRolling(*runs, *rollingRowsFlag, *keep, *verbose); err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*runs, *messages, *kills, *keys, *adapters, *defaults, *keep, *verbose, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

func run(runs, messages, kills, keys int, adapters string, defaults, keep, verbose bool, timeout time.Duration) error {
	if runs < 1 || messages < 1 || kills < 0 {
		return fmt.Errorf("-runs %d, -messages %d, -kills %d: want runs and messages >= 1, kills >= 0", runs, messages, kills)
	}
	chosen, err := chooseRows(adapters)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	settings := "rebalance timeout 6s (session 3s, revoke 4s, heartbeat 1s), stall = 30s without progress"
	if defaults {
		settings = "each client's default timeouts, stall = session timeout + 30s without progress"
	}
	ordering := "keyless, Unordered"
	if keys > 0 {
		ordering = fmt.Sprintf("%d keys, ByKey", keys)
	}
	fmt.Printf("chaos: %s, %d runs per row, %d messages (%s), 4 partitions, 3 members, %d kills, handlers 10-30ms, 16 workers per member; %s\n",
		time.Now().UTC().Format(time.RFC3339), runs, messages, ordering, kills, settings)

	results := make(map[string][]churn.Result)
	// Rows take turns, so that the machine's load falls on all of them.
	for i := range runs {
		for _, r := range chosen {
			dir, err := os.MkdirTemp("", "chaos-"+r.name+"-")
			if err != nil {
				return err
			}
			cfg := churn.Config{
				Command:  []string{exe, "-member=" + r.name},
				Dir:      dir,
				Adapter:  r.name,
				Protocol: r.protocol,
				Messages: messages,
				Kills:    kills,
				Keys:     keys,
				Defaults: defaults,
				Timeout:  timeout,
			}
			if defaults {
				cfg.SessionTimeout = r.session
			}
			withOutputs(r.name, &cfg) // eos.go
			if verbose {
				cfg.Logf = func(format string, args ...any) {
					fmt.Fprintf(os.Stderr, "  %s run %d: %s\n", r.name, i+1, fmt.Sprintf(format, args...))
				}
			}
			res, err := churn.Run(ctx, cfg)
			if err != nil {
				return fmt.Errorf("%s run %d (files in %s): %w", r.name, i+1, dir, err)
			}
			results[r.name] = append(results[r.name], res)
			fmt.Fprintf(os.Stderr, "run %d %s\n", i+1, res)
			if res.OK() && outputsOK(res) && !keep { // outputsOK: eos.go
				os.RemoveAll(dir)
				continue
			}
			for _, p := range res.Problems(5) {
				fmt.Fprintf(os.Stderr, "    %s\n", p)
			}
			fmt.Fprintf(os.Stderr, "    files: %s\n", dir)
		}
	}
	fmt.Println()
	printTable(chosen, results)
	printOutputs(chosen, results) // eos.go
	printZombies(chosen, results) // zombie.go
	printUnowned(chosen, results)
	return nil
}

// chooseRows returns the rows named in the comma-separated list.
func chooseRows(names string) ([]row, error) {
	var chosen []row
	for _, name := range strings.Split(names, ",") {
		i := slices.IndexFunc(rows, func(r row) bool { return r.name == strings.TrimSpace(name) })
		if i < 0 {
			return nil, fmt.Errorf("-adapters: unknown row %q (known: %s)", name, rowNames())
		}
		chosen = append(chosen, rows[i])
	}
	return chosen, nil
}

// rowNames lists the rows -adapters may name.
func rowNames() string {
	var names []string
	for _, r := range rows {
		names = append(names, r.name)
	}
	return strings.Join(names, ", ")
}

// countRuns sums n over rs: "0", or the total and the number of runs it
// happened in.
func countRuns(rs []churn.Result, n func(churn.Result) int) string {
	total, in := 0, 0
	for _, x := range rs {
		if k := n(x); k > 0 {
			total += k
			in++
		}
	}
	if total == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%d runs)", total, in)
}

// printTable prints the markdown table: per row the totals over its runs,
// each with the number of runs it happened in.
func printTable(chosen []row, results map[string][]churn.Result) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(w, "| row\t runs\t lost messages\t rewinds\t stalls\t short final commits\t ghosts\t stuck groups\t other failures\t median run time\t")
	fmt.Fprintln(w, "|---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t")
	for _, r := range chosen {
		rs := results[r.name]
		count := func(n func(churn.Result) int) string { return countRuns(rs, n) }
		var durs []time.Duration
		for _, x := range rs {
			durs = append(durs, x.Duration)
		}
		slices.Sort(durs)
		med := time.Duration(0)
		if len(durs) > 0 {
			med = durs[len(durs)/2]
			if len(durs)%2 == 0 {
				med = (durs[len(durs)/2-1] + durs[len(durs)/2]) / 2
			}
		}
		fmt.Fprintf(w, "| %s\t %d\t %s\t %s\t %s\t %s\t %s\t %s\t %s\t %.1fs\t\n", r.name, len(rs),
			count(func(x churn.Result) int { return x.Lost }),
			count(func(x churn.Result) int { return len(x.Rewinds) }),
			count(func(x churn.Result) int { return len(x.Stalls) }),
			count(func(x churn.Result) int { return len(x.Short) }),
			count(func(x churn.Result) int { return len(x.Ghosts) }),
			count(func(x churn.Result) int { return len(x.Stuck) }),
			count(otherFailures),
			med.Seconds())
	}
	w.Flush()
}

// otherFailures counts a run's members that hung or failed, and the run
// itself if it timed out: the tables' "other failures". A run whose group
// the broker held stuck in PreparingRebalance counts as stuck only: its
// members' JoinGroups went unanswered (one may end Run with ErrNeverJoined),
// the broker's doing; its findings are still printed with its files.
func otherFailures(x churn.Result) int {
	if len(x.Stuck) > 0 {
		return 0
	}
	n := len(x.Hung) + len(x.Failed)
	if x.Aborted == "timeout" {
		n++
	}
	return n
}
