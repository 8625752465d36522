package main

// This file is the broker-fault scenario of issue 25 (-faults): the churn
// scenario on 3 brokers with faults of the broker (package brokerfault)
// every 1–2.5 s for the first FaultFor of each run and a member frozen past
// its session timeout now and then, ByKey in every other run, and a table
// of the duplicates per fault and per kill against their bound.

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/inorder/inorder/internal/kafkatest/brokerfault"
	"github.com/inorder/inorder/internal/kafkatest/churn"
)

// faultOpts are the -faults scenario's settings.
type faultOpts struct {
	runs, messages, kills, keys int
	adapters                    []row
	faultFor                    time.Duration
	keep, verbose               bool
	timeout                     time.Duration
}

// faultRowNames are the rows -faults runs unless -adapters says otherwise.
const faultRowNames = "kafkago,confluent-eager,confluent-cooperative,franz-eager,franz-cooperative"

// faultSettle is how long a partition whose every message was handled may
// go without progress before the run counts it done with its commit short
// of the log end. The harness's default (session + rebalance timeout + 3s)
// leaves no room for the brokers' faults on top of a dead or frozen
// member's session expiry and the rebalance that follows. 15s, as the
// peers command.
const faultSettle = 15 * time.Second

// runFaults runs the fault scenario o.runs times per row and prints the
// table.
func runFaults(o faultOpts) error {
	if o.runs < 1 || o.messages < 1 || o.kills < 0 || o.keys < 0 || o.faultFor <= 0 {
		return fmt.Errorf("-runs %d, -messages %d, -kills %d, -keys %d, -fault-for %v: want runs, messages, fault-for > 0, kills, keys >= 0",
			o.runs, o.messages, o.kills, o.keys, o.faultFor)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	keys := o.keys
	if keys == 0 {
		keys = 200
	}
	base := churn.DefaultConfig()
	stall := base.SessionTimeout + 10*time.Second
	fmt.Printf("chaos -faults: %s, %d runs per row (ByKey with %d keys in every other run, from the second), %d messages, 4 partitions, 3 brokers, 3 members, %d kills, handlers 10-30ms, 16 workers per member; "+
		"broker faults every 1-2.5s for %v (leader moves, leader shuffles, coordinator moves, a broker out for 1.5s, requests cut or failed for 1.5s, a member frozen %v-%v); "+
		"rebalance timeout 6s (session 3s, revoke 4s, heartbeat 1s), stall = %v without progress after the last fault\n",
		time.Now().UTC().Format(time.RFC3339), o.runs, keys, o.messages, o.kills, o.faultFor,
		base.SessionTimeout+time.Second, base.SessionTimeout+2*time.Second, stall)

	results := make(map[string][]churn.Result)
	for i := range o.runs {
		for _, r := range o.adapters {
			dir, err := os.MkdirTemp("", "chaos-faults-"+r.name+"-")
			if err != nil {
				return err
			}
			runKeys := 0
			if i%2 == 1 {
				runKeys = keys
			}
			logf := func(string, ...any) {}
			if o.verbose {
				logf = func(format string, args ...any) {
					fmt.Fprintf(os.Stderr, "  %s run %d: %s\n", r.name, i+1, fmt.Sprintf(format, args...))
				}
			}
			cfg := churn.Config{
				Command:    []string{exe, "-member=" + r.name},
				Dir:        dir,
				Adapter:    r.name,
				Protocol:   r.protocol,
				Messages:   o.messages,
				Kills:      o.kills,
				Keys:       runKeys,
				Brokers:    3,
				StallAfter: stall,
				Timeout:    o.timeout,
				Logf:       logf,
			}
			cfg.SettleAfter = faultSettle
			cfg.Chaos = func(ctx context.Context, env *churn.ChaosEnv) {
				err := brokerfault.Run(ctx, env.Cluster().Fake(), brokerfault.Config{
					Topic: "churn", Partitions: 4, Duration: o.faultFor,
					FreezeMin: base.SessionTimeout + time.Second, FreezeMax: base.SessionTimeout + 2*time.Second,
				}, brokerfault.Hooks{Begin: env.Begin, Freeze: env.Freeze, Logf: logf})
				if err != nil {
					fmt.Fprintf(os.Stderr, "  %s run %d: %v\n", r.name, i+1, err)
				}
			}
			res, err := churn.Run(ctx, cfg)
			if err != nil {
				return fmt.Errorf("%s run %d (files in %s): %w", r.name, i+1, dir, err)
			}
			results[r.name] = append(results[r.name], res)
			over := overEvents(res)
			fmt.Fprintf(os.Stderr, "run %d %s, keys %d, %d freezes, %d duplicates (bound %d), %d events over bound\n",
				i+1, res, runKeys, res.Freezes, res.Duplicates, boundOf(res.Events), len(over))
			writeEvents(dir, res)
			if res.OK() && len(over) == 0 && !o.keep {
				os.RemoveAll(dir)
				continue
			}
			for _, p := range res.Problems(5) {
				fmt.Fprintf(os.Stderr, "    %s\n", p)
			}
			for _, e := range over {
				fmt.Fprintf(os.Stderr, "    over bound: %s\n", e)
			}
			fmt.Fprintf(os.Stderr, "    files: %s\n", dir)
		}
	}
	fmt.Println()
	printFaultTable(o.adapters, results)
	return nil
}

// overEvents returns the run's events whose duplicates exceeded their bound.
func overEvents(res churn.Result) []churn.Event {
	var out []churn.Event
	for _, e := range res.Events {
		if e.Over() {
			out = append(out, e)
		}
	}
	return out
}

func boundOf(evs []churn.Event) int {
	n := 0
	for _, e := range evs {
		n += e.Bound
	}
	return n
}

// writeEvents writes the run's events to events.txt in its directory.
func writeEvents(dir string, res churn.Result) {
	var b strings.Builder
	for _, e := range res.Events {
		fmt.Fprintln(&b, e)
	}
	_ = os.WriteFile(filepath.Join(dir, "events.txt"), []byte(b.String()), 0o644)
}

// class sorts an event into the table's columns: a kill, a member's own
// start or stop (the churn's rebalances), or a fault of the broker or a
// frozen member.
func class(kind string) string {
	switch kind {
	case "kill":
		return "kill"
	case "join", "term", "stop":
		return "member"
	}
	return "fault"
}

// printFaultTable prints the markdown table of the fault runs.
func printFaultTable(chosen []row, results map[string][]churn.Result) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(w, "| row\t runs\t lost\t rewinds\t stalls\t short final commits\t ghosts\t stuck groups\t other failures\t faults\t kills\t duplicates\t dups/fault (bound)\t dups/kill (bound)\t dups/member start-stop (bound)\t events over bound\t stale after a freeze (max)\t median run time\t")
	fmt.Fprintln(w, "|---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t")
	for _, r := range chosen {
		rs := results[r.name]
		count := func(n func(churn.Result) int) string { return countRuns(rs, n) }
		n, d, b := map[string]int{}, map[string]int{}, map[string]int{}
		dups, freezes, stale, maxStale := 0, 0, 0, 0
		var durs []time.Duration
		for _, x := range rs {
			durs = append(durs, x.Duration)
			dups += x.Duplicates
			for _, e := range x.Events {
				c := class(e.Kind)
				n[c]++
				d[c] += e.Dups
				b[c] += e.Bound
				if e.Kind == "freeze" {
					freezes++
					stale += e.Stale
					maxStale = max(maxStale, e.Stale)
				}
			}
		}
		per := func(c string) string {
			if n[c] == 0 {
				return "-"
			}
			return fmt.Sprintf("%.0f (%.0f)", float64(d[c])/float64(n[c]), float64(b[c])/float64(n[c]))
		}
		staleCol := "-"
		if freezes > 0 {
			staleCol = fmt.Sprintf("%.0f (%d)", float64(stale)/float64(freezes), maxStale)
		}
		fmt.Fprintf(w, "| %s\t %d\t %s\t %s\t %s\t %s\t %s\t %s\t %s\t %d\t %d\t %d\t %s\t %s\t %s\t %s\t %s\t %.1fs\t\n", r.name, len(rs),
			count(func(x churn.Result) int { return x.Lost }),
			count(func(x churn.Result) int { return len(x.Rewinds) }),
			count(func(x churn.Result) int { return len(x.Stalls) }),
			count(func(x churn.Result) int { return len(x.Short) }),
			count(func(x churn.Result) int { return len(x.Ghosts) }),
			count(func(x churn.Result) int { return len(x.Stuck) }),
			count(otherFailures),
			n["fault"], n["kill"], dups, per("fault"), per("kill"), per("member"),
			count(func(x churn.Result) int { return len(overEvents(x)) }),
			staleCol, median(durs).Seconds())
	}
	w.Flush()
	// Per kind of fault, over every row: how often, and what it cost.
	var all []churn.Event
	for _, r := range chosen {
		for _, x := range results[r.name] {
			all = append(all, x.Events...)
		}
	}
	sum := churn.SummarizeEvents(all)
	slices.SortFunc(sum, func(a, b churn.ChaosSummary) int { return b.Dups - a.Dups })
	fmt.Println()
	w = tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(w, "| event (all rows)\t count\t duplicates\t bound\t over bound\t")
	fmt.Fprintln(w, "|---\t---\t---\t---\t---\t")
	for _, s := range sum {
		fmt.Fprintf(w, "| %s\t %d\t %d\t %d\t %d\t\n", s.Kind, s.Events, s.Dups, s.Bound, s.Over)
	}
	w.Flush()
}

func median(durs []time.Duration) time.Duration {
	if len(durs) == 0 {
		return 0
	}
	slices.Sort(durs)
	if len(durs)%2 == 0 {
		return (durs[len(durs)/2-1] + durs[len(durs)/2]) / 2
	}
	return durs[len(durs)/2]
}
