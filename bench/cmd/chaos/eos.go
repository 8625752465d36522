package main

// This file holds the consume → produce rows (issue 23): members that write
// one output record per input to a second topic, exactly once (franz and
// confluent with WithTransactionalID: the output goes in the transaction
// that commits its input; rows *-eos-*) or at least once (franz: the
// handler produces, then returns, and the commit follows; rows *-alo-*). After each run the output topic is read with read_committed
// isolation and each input's outputs counted: missing and duplicated.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/churn"
	"github.com/inorder/inorder/internal/kafkatest/churn/cfmember"
	"github.com/inorder/inorder/internal/kafkatest/churn/frmember"
)

// outTopic is the topic the consume → produce members write to.
const outTopic = "churn-out"

func init() {
	rows = append(rows,
		row{"franz-eos-eager", eosConsume(true), "eager", franz.DefaultSessionTimeout},
		row{"franz-eos-cooperative", eosConsume(true), "cooperative", franz.DefaultSessionTimeout},
		row{"franz-alo-eager", eosConsume(false), "eager", franz.DefaultSessionTimeout},
		row{"franz-alo-cooperative", eosConsume(false), "cooperative", franz.DefaultSessionTimeout},
		row{"confluent-eos-eager", cfEOSConsume, "eager", confluent.DefaultSessionTimeout},
		row{"confluent-eos-cooperative", cfEOSConsume, "cooperative", confluent.DefaultSessionTimeout},
	)
}

// producing reports whether the row writes outputs.
func producing(name string) bool {
	switch name {
	case "franz-eos-eager", "franz-eos-cooperative", "franz-alo-eager", "franz-alo-cooperative",
		"confluent-eos-eager", "confluent-eos-cooperative":
		return true
	}
	return zombieRow(name) // zombie.go
}

// withOutputs adds to cfg, for a producing row, the creation of the output
// topic and the count of its outputs.
func withOutputs(name string, cfg *churn.Config) {
	if !producing(name) {
		return
	}
	cfg.Setup = func(ctx context.Context, c *kafkatest.Cluster) error {
		return c.CreateTopic(ctx, outTopic, 4)
	}
	cfg.Check = func(ctx context.Context, c *kafkatest.Cluster, res *churn.Result) error {
		ends, err := c.LogEnd(ctx, "churn")
		if err != nil {
			return err
		}
		// A member killed with a transaction open (its transactional id
		// is never used again here: each replacement is a new member)
		// holds the last stable offset until the transaction times out.
		t0 := time.Now()
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err = c.WaitStable(wctx, outTopic)
		cancel()
		if err != nil {
			return err
		}
		recs, err := c.ReadCommitted(ctx, outTopic)
		if err != nil {
			return err
		}
		seen := make(map[string]int, len(recs))
		for _, r := range recs {
			seen[string(r.Value)]++
		}
		missing, dups := 0, 0
		for p, end := range ends {
			for o := range end {
				switch n := seen[fmt.Sprintf("%d/%d", p, o)]; {
				case n == 0:
					missing++
				case n > 1:
					dups += n - 1
				}
			}
		}
		res.Extra = map[string]int{"outputs": len(recs), "missing": missing, "duplicates": dups,
			"stable_wait_ms": int(time.Since(t0) / time.Millisecond)}
		return nil
	}
	withZombies(name, cfg) // zombie.go
}

// outputsOK reports whether a run's output check (if any) found nothing
// unexpected: no output missing, no duplicate in an exactly-once row, and
// in a zombie row no frozen transaction committed and every frozen member
// recovered.
func outputsOK(res churn.Result) bool {
	if zombieRow(res.Adapter) && !zombiesOK(res) {
		return false
	}
	return res.Extra["missing"] == 0 && (res.Extra["duplicates"] == 0 || strings.Contains(res.Adapter, "-alo-"))
}

// eosConsume returns the Consume of a producing member: exactly once
// (txn) or at least once.
func eosConsume(txn bool) churn.Consume {
	return func(ctx context.Context, s churn.MemberSpec, handle churn.Handle, log *slog.Logger) error {
		opts := frmember.Options(s, log)
		output := func(p int32, o int64) *kgo.Record {
			return &kgo.Record{Topic: outTopic, Value: fmt.Appendf(nil, "%d/%d", p, o)}
		}
		if txn {
			// Unique per process (each replacement is a new member index)
			// and stable for its life.
			opts = append(opts, franz.WithTransactionalID(s.Group+"-member-"+strconv.Itoa(s.Index)))
			cons, err := franz.NewConsumer(s.Brokers, s.Group, []string{s.Topic}, opts...)
			if err != nil {
				return err
			}
			return cons.Run(ctx, func(ctx context.Context, r *kgo.Record) error {
				if err := handle(ctx, r.Partition, r.Offset); err != nil {
					return err
				}
				return franz.Produce(ctx, output(r.Partition, r.Offset))
			})
		}
		prod, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers...))
		if err != nil {
			return err
		}
		defer prod.Close()
		cons, err := franz.NewConsumer(s.Brokers, s.Group, []string{s.Topic}, opts...)
		if err != nil {
			return err
		}
		return cons.Run(ctx, func(ctx context.Context, r *kgo.Record) error {
			if err := handle(ctx, r.Partition, r.Offset); err != nil {
				return err
			}
			return prod.ProduceSync(ctx, output(r.Partition, r.Offset)).FirstErr()
		})
	}
}

// cfEOSConsume is the Consume of an exactly-once confluent member.
func cfEOSConsume(ctx context.Context, s churn.MemberSpec, handle churn.Handle, log *slog.Logger) error {
	opts := append(cfmember.Options(s, log), confluent.WithTransactionalID(s.Group+"-member-"+strconv.Itoa(s.Index)))
	cons, err := confluent.NewConsumer(s.Brokers, s.Group, []string{s.Topic}, opts...)
	if err != nil {
		return err
	}
	topic := outTopic
	return cons.Run(ctx, func(ctx context.Context, m *kafka.Message) error {
		p, o := m.TopicPartition.Partition, int64(m.TopicPartition.Offset)
		if err := handle(ctx, p, o); err != nil {
			return err
		}
		return confluent.Produce(ctx, &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Value: fmt.Appendf(nil, "%d/%d", p, o)})
	})
}

// printOutputs prints the output table of the producing rows chosen.
func printOutputs(chosen []row, results map[string][]churn.Result) {
	any := false
	for _, r := range chosen {
		any = any || producing(r.name)
	}
	if !any {
		return
	}
	fmt.Println()
	fmt.Println("consume → produce: the output topic read with read_committed isolation, one output per input expected")
	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(w, "| row\t runs\t checked runs\t missing outputs\t duplicate outputs\t runs passed (all checks)\t longest wait for open transactions\t")
	fmt.Fprintln(w, "|---\t---\t---\t---\t---\t---\t---\t")
	for _, r := range chosen {
		if !producing(r.name) {
			continue
		}
		checked, missing, dups, missingRuns, dupRuns, passed, wait := 0, 0, 0, 0, 0, 0, 0
		for _, x := range results[r.name] {
			if x.Extra == nil {
				continue // aborted (ghost, stuck, timeout): not checked
			}
			checked++
			wait = max(wait, x.Extra["stable_wait_ms"])
			missing += x.Extra["missing"]
			dups += x.Extra["duplicates"]
			if x.Extra["missing"] > 0 {
				missingRuns++
			}
			if x.Extra["duplicates"] > 0 {
				dupRuns++
			}
			if x.OK() && outputsOK(x) {
				passed++
			}
		}
		fmt.Fprintf(w, "| %s\t %d\t %d\t %d (%d runs)\t %d (%d runs)\t %d\t %.1fs\t\n", r.name, len(results[r.name]), checked,
			missing, missingRuns, dups, dupRuns, passed, float64(wait)/1000)
	}
	w.Flush()
}
