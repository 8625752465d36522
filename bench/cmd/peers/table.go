package main

// This file prints the command's one table, in markdown.

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/inorder/inorder/internal/kafkatest/churn"
)

// printTable prints one line per row: the handlers it can run at once, per
// workload its rate, its ratio to the best adapter of this module on that
// workload and its peak RSS, then the crash loop's findings.
func printTable(out io.Writer, c config, rep report) {
	fmt.Fprintf(out, "\nthroughput: %d messages of %d B over %d partitions, each consumer stopped at %d handled or %v after its first message; concurrency %d\n",
		c.messages, c.size, c.partitions, c.messages, c.duration, c.concurrency)
	if c.crash {
		fmt.Fprintf(out, "crash loop: %d member processes, %d messages, handler %v with %.0f%% at %v, %d SIGKILLs (kill i after i/%d of the messages and %v-%v after the one before) then run to the end; session %v, rebalance %v\n",
			c.members, c.crashMessages, c.crashHandler, 100*c.crashSlowFraction, c.crashSlow, c.kills, c.kills+1, c.killMin, c.killMax, c.crashSession, c.crashRebalance)
	}
	fmt.Fprintln(out, "msg/s (ratio to the best inorder adapter on that workload), peak RSS of the consumer process")
	fmt.Fprintln(out)

	best := map[string]float64{}
	for _, w := range c.chosenWorkloads {
		for _, r := range c.chosenRows {
			if o, ok := rep.throughput[r.name][w.name]; ok && r.ours {
				best[w.name] = max(best[w.name], o.Result.Rate())
			}
		}
	}
	tw := tabwriter.NewWriter(out, 0, 0, 1, ' ', tabwriter.Debug)
	head := []string{"consumer", "handlers at once"}
	align := []string{"---", "---"}
	for _, w := range c.chosenWorkloads {
		head = append(head, w.name+" msg/s", "RSS")
		align = append(align, "--:", "--:")
	}
	if c.crash {
		head = append(head, "crash: kills", "lost", "duplicates", "commits backwards", "other findings")
		align = append(align, "--:", "--:", "--:", "--:", "---")
	}
	fmt.Fprintf(tw, "| %s\t\n", strings.Join(head, "\t "))
	fmt.Fprintf(tw, "|%s\t\n", strings.Join(align, "\t"))
	for _, r := range c.chosenRows {
		cells := []string{r.name, r.inFlight(c.concurrency, c.partitions)}
		for _, w := range c.chosenWorkloads {
			o, ok := rep.throughput[r.name][w.name]
			if !ok {
				cells = append(cells, "failed", "–")
				continue
			}
			rate := fmt.Sprintf("%.0f", o.Result.Rate())
			if b := best[w.name]; b > 0 {
				rate += fmt.Sprintf(" (%.2fx)", o.Result.Rate()/b)
			}
			if o.Result.Handled < int64(c.messages) {
				rate += "*"
			}
			cells = append(cells, rate, mib(o.HWM))
		}
		if c.crash {
			res, ok := rep.crash[r.name]
			if !ok {
				cells = append(cells, "–", "–", "–", "–", "run failed: "+rep.crashErr[r.name])
			} else {
				lost := fmt.Sprint(res.Lost)
				if res.Aborted != "" {
					lost = "– (aborted)"
				}
				cells = append(cells, fmt.Sprint(res.Kills), lost, fmt.Sprint(res.Duplicates), fmt.Sprint(len(res.Rewinds)), otherFindings(res))
			}
		}
		fmt.Fprintf(tw, "| %s\t\n", strings.Join(cells, "\t "))
	}
	tw.Flush()
	fmt.Fprintln(out, "\n* stopped by -duration before handling the whole backlog: the rate is over the time it ran.")
	for _, r := range c.chosenRows {
		for _, w := range c.chosenWorkloads {
			if why, ok := rep.failed[r.name][w.name]; ok {
				fmt.Fprintf(out, "%s on %s failed: %s\n", r.name, w.name, why)
			}
		}
	}
}

// otherFindings lists the crash run's findings besides loss, duplicates
// and rewinds, or "none".
func otherFindings(r churn.Result) string {
	var f []string
	add := func(n int, what string) {
		if n > 0 {
			f = append(f, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(len(r.Short), "short final commits")
	add(len(r.Stalls), "stalls")
	add(len(r.Ghosts), "broker ghosts")
	add(len(r.Stuck), "groups stuck by the broker")
	add(len(r.Hung), "hung at stop")
	add(len(r.Failed), "failed at stop")
	if r.Aborted != "" {
		f = append(f, "aborted: "+r.Aborted)
	}
	if len(f) == 0 {
		return "none"
	}
	return strings.Join(f, ", ")
}
