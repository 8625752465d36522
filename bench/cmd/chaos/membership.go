package main

// This file holds issue 22's scenarios: the churn rows with the consumer
// group protocol (KIP-848), the partition-time without an owner of every
// row (what a rebalance protocol costs the handlers), and the rolling
// restart of static members (-rolling).
//
//	go run ./bench/cmd/chaos -runs 5 -adapters franz-cooperative,franz-consumer,confluent-cooperative,confluent-consumer
//	go run ./bench/cmd/chaos -rolling -runs 20
//	go run ./bench/cmd/chaos -rolling -runs 5 -rolling-rows franz-static,franz-dynamic

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest/churn"
	"github.com/inorder/inorder/internal/kafkatest/churn/cfmember"
	"github.com/inorder/inorder/internal/kafkatest/churn/frmember"
)

func init() {
	// KIP-848: the broker owns the session (set to the run's session
	// timeout); with -defaults, its default 45s.
	rows = append(rows,
		row{"franz-consumer", frmember.Consume, "consumer", franz.DefaultSessionTimeout},
		row{"confluent-consumer", cfmember.Consume, "consumer", confluent.DefaultSessionTimeout})
}

// printUnowned prints, per row, the partition-time without an owner
// (revoked and not yet assigned, or held by a dead member) per run: the
// handler time the rebalances cost, comparable between protocols in one
// command.
func printUnowned(chosen []row, results map[string][]churn.Result) {
	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(w, "| row\t protocol\t runs\t partition-time without an owner per run: median\t min\t max\t")
	fmt.Fprintln(w, "|---\t---\t---\t---\t---\t---\t")
	for _, r := range chosen {
		var d []time.Duration
		for _, x := range results[r.name] {
			d = append(d, x.Unowned)
		}
		if len(d) == 0 {
			continue
		}
		slices.Sort(d)
		fmt.Fprintf(w, "| %s\t %s\t %d\t %.1fs\t %.1fs\t %.1fs\t\n", r.name, r.protocol, len(d),
			median(d).Seconds(), d[0].Seconds(), d[len(d)-1].Seconds())
	}
	w.Flush()
}

// rollingRow is one line of the rolling-restart table.
type rollingRow struct {
	name, member, protocol string
	static                 bool
}

var rollingRows = []rollingRow{
	{"franz-static", "franz-eager", "eager", true},
	{"franz-dynamic", "franz-eager", "eager", false},
	{"franz-cooperative-static", "franz-cooperative", "cooperative", true},
	{"confluent-static", "confluent-eager", "eager", true},
	{"confluent-dynamic", "confluent-eager", "eager", false},
	{"kafkago-static", "kafkago", "eager", true},
	{"kafkago-dynamic", "kafkago", "eager", false},
}

// runRolling runs the rolling-restart scenario runs times per row and
// prints its table.
func runRolling(runs int, names string, keep, verbose bool) error {
	var chosen []rollingRow
	for _, n := range strings.Split(names, ",") {
		i := slices.IndexFunc(rollingRows, func(r rollingRow) bool { return r.name == strings.TrimSpace(n) })
		if i < 0 {
			return fmt.Errorf("-rolling-rows: unknown row %q", n)
		}
		chosen = append(chosen, rollingRows[i])
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Printf("chaos -rolling: %s, %d runs per row, 3 members restarted in turn (SIGTERM, 2s down), 4 partitions, 1,000 messages/s, handlers 10-30ms, 16 workers per member, session 10s, rebalance 12s, revoke 4s, heartbeat 1s\n",
		time.Now().UTC().Format(time.RFC3339), runs)
	results := map[string][]churn.RollingResult{}
	for i := range runs {
		for _, r := range chosen {
			dir, err := os.MkdirTemp("", "rolling-"+r.name+"-")
			if err != nil {
				return err
			}
			cfg := churn.RollingConfig{Command: []string{exe, "-member=" + r.member}, Dir: dir, Adapter: r.name,
				Protocol: r.protocol, Static: r.static}
			if verbose {
				cfg.Logf = func(format string, args ...any) {
					fmt.Fprintf(os.Stderr, "  %s run %d: %s\n", r.name, i+1, fmt.Sprintf(format, args...))
				}
			}
			res, err := churn.RunRolling(ctx, cfg)
			if err != nil {
				return fmt.Errorf("%s run %d (files in %s): %w", r.name, i+1, dir, err)
			}
			results[r.name] = append(results[r.name], res)
			fmt.Fprintf(os.Stderr, "run %d %s\n", i+1, res)
			if res.OK() && !keep {
				os.RemoveAll(dir)
				continue
			}
			for _, l := range slices.Concat(res.LostAt, res.Rewinds, res.Short, res.Failed) {
				fmt.Fprintf(os.Stderr, "    %s\n", l)
			}
			fmt.Fprintf(os.Stderr, "    files: %s\n", dir)
		}
	}
	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(w, "| row\t runs\t restarts\t rebalances per restart (max)\t runs with a partition moved\t lost\t rewinds\t duplicates (runs)\t max partition idle\t unowned per run (median)\t failures\t")
	fmt.Fprintln(w, "|---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t---\t")
	for _, r := range chosen {
		rs := results[r.name]
		restarts, rebal, maxRebal, movedRuns, lost, rewinds, dups, dupRuns, failures := 0, 0, 0, 0, 0, 0, 0, 0, 0
		var maxIdle time.Duration
		var unowned []time.Duration
		for _, x := range rs {
			restarts += x.Restarts
			moved := 0
			for i, n := range x.Rebalances {
				rebal += n
				maxRebal = max(maxRebal, n)
				moved += x.Moved[i]
			}
			if moved > 0 {
				movedRuns++
			}
			lost += x.Lost
			rewinds += len(x.Rewinds)
			if x.Dups > 0 {
				dups += x.Dups
				dupRuns++
			}
			failures += len(x.Failed) + len(x.Short)
			maxIdle = max(maxIdle, x.MaxIdle)
			unowned = append(unowned, x.Unowned)
		}
		slices.Sort(unowned)
		perRestart := 0.0
		if restarts > 0 {
			perRestart = float64(rebal) / float64(restarts)
		}
		med := time.Duration(0)
		if len(unowned) > 0 {
			med = median(unowned)
		}
		fmt.Fprintf(w, "| %s\t %d\t %d\t %.2f (%d)\t %d\t %d\t %d\t %d (%d)\t %.1fs\t %.1fs\t %d\t\n", r.name, len(rs), restarts,
			perRestart, maxRebal, movedRuns, lost, rewinds, dups, dupRuns, maxIdle.Seconds(), med.Seconds(), failures)
	}
	return w.Flush()
}
