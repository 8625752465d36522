package kafkago

// This file holds what keeps the assignment in step with the topics: the
// group leader assigns from fresh per-topic metadata, and rejoins when a
// partition count it assigned from changes.
//
// Why not kafka-go's own (ConsumerGroupConfig.WatchPartitionChanges): its
// leader reads all topics in one metadata request and assigns nothing at
// all when one of them is unknown (a deleted topic stops every topic), and
// its watcher ends the generation at once when its topic is unknown at the
// start, so a deleted topic makes the group rebalance in a tight loop. Here
// an unknown topic has no partitions, the others are assigned, and only a
// change from what the leader assigned (as the Java client does) rejoins.

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// partitionCounts are the partition counts of topics (0: unknown topic).
type partitionCounts map[string]int

// readPartitions reads the partitions of each topic over a fresh
// connection to a bootstrap broker (no cache: a change must be seen as soon
// as the watcher looks). Unknown topics have none.
func (g *groupRun) readPartitions(ctx context.Context, topics []string) ([]kafka.Partition, partitionCounts, error) {
	ctx, cancel := context.WithTimeout(ctx, g.c.opts.RequestTimeout)
	defer cancel()
	var conn *kafka.Conn
	var err error
	for _, b := range g.c.brokers {
		if conn, err = g.dialer.DialContext(ctx, "tcp", b); err == nil {
			break
		}
	}
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	var all []kafka.Partition
	counts := partitionCounts{}
	for _, t := range topics {
		ps, err := conn.ReadPartitions(t)
		if err != nil && !errors.Is(err, kafka.UnknownTopicOrPartition) {
			return nil, nil, err
		}
		counts[t] = len(ps)
		all = append(all, ps...)
	}
	return all, counts, nil
}

// watchPartitions, when this member assigned the generation (it is the
// leader), checks every watch interval whether a partition count changed
// since and returns when one did (or ctx ended): the caller ends the
// generation and the member rejoins, which rebalances the group.
func (g *groupRun) watchPartitions(ctx context.Context, from *partitionCounts) (changed bool) {
	if from == nil || len(*from) == 0 {
		return false
	}
	topics := slices.Sorted(maps.Keys(*from))
	t := time.NewTicker(g.c.cfg.watchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		_, now, err := g.readPartitions(ctx, topics)
		if err != nil {
			g.c.opts.Logger.Debug("kafkago: partition watch failed", "group", g.c.group, "error", err)
			continue
		}
		if !maps.Equal(now, *from) {
			for _, t := range topics {
				if (*from)[t] > 0 && now[t] == 0 {
					g.c.opts.Logger.Warn("kafkago: topic deleted while consumed, rejoining the group without it",
						"group", g.c.group, "topic", t)
				}
			}
			g.c.opts.Logger.Info("kafkago: partition counts changed, rejoining the group",
				"group", g.c.group, "assigned_from", *from, "now", now)
			return true
		}
	}
}

// assignedFromSlot holds what the last assignment this member made was
// computed from (nil: it did not assign).
type assignedFromSlot = atomic.Pointer[partitionCounts]
