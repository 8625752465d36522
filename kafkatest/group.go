package kafkatest

// This file holds the administrative side: topics, log ends, and what a
// consumer group did (its commits, its state and members).

import (
	"context"
	"slices"
	"time"
)

// CreateTopic creates topic with the given number of partitions. An
// existing topic is an error.
func (c *Cluster) CreateTopic(ctx context.Context, topic string, partitions int32) error {
	return c.in.CreateTopic(ctx, topic, partitions)
}

// LogEnd returns the log end offset (the high watermark: one past the last
// record or transaction marker) of every partition of topic.
func (c *Cluster) LogEnd(ctx context.Context, topic string) (map[int32]int64, error) {
	return c.in.LogEnd(ctx, topic)
}

// Commit is the offset a group committed for one partition, with the
// commit's metadata.
type Commit struct {
	// Offset is the next offset the group will read: every record below
	// it is done.
	Offset int64
	// Metadata is the string committed with the offset ("" for none).
	// inorder writes there the messages above Offset already handled.
	Metadata string
}

// Committed returns the offsets group has committed for topic, by
// partition. Partitions without a commit are absent; a group that does not
// exist has none.
func (c *Cluster) Committed(ctx context.Context, group, topic string) (map[int32]Commit, error) {
	in, err := c.in.Committed(ctx, group, topic)
	if err != nil {
		return nil, err
	}
	out := make(map[int32]Commit, len(in))
	for p, cm := range in {
		out[p] = Commit{Offset: cm.Offset, Metadata: cm.Metadata}
	}
	return out, nil
}

// WaitCommitted waits until group has committed every partition of topic
// at its log end (read again at each check, every 20ms), that is until
// every record produced so far is done. It returns ctx's error if ctx ends
// first.
func (c *Cluster) WaitCommitted(ctx context.Context, group, topic string) error {
	for {
		ends, err := c.LogEnd(ctx, topic)
		if err != nil {
			return err
		}
		com, err := c.Committed(ctx, group, topic)
		if err != nil {
			return err
		}
		done := true
		for p, end := range ends {
			if end > 0 && com[p].Offset < end {
				done = false
			}
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Group is a consumer group as the broker sees it.
type Group struct {
	// State is the group's state: "Empty" (no members), "Stable",
	// "PreparingRebalance", "CompletingRebalance" or "Dead".
	State string
	// Generation is the group's generation, one more at each rebalance.
	Generation int32
	// Members are the group's members, sorted by member id.
	Members []Member
}

// Member is a member of a consumer group.
type Member struct {
	// ID is the member id the broker gave it.
	ID string
	// ClientID is the client id it sent (WithClientID).
	ClientID string
	// Assigned are the partitions assigned to it, by topic, sorted.
	Assigned map[string][]int32
}

// Group returns group's state and members, and false if the broker does
// not know the group (nobody joined it nor committed for it).
func (c *Cluster) Group(group string) (Group, bool) {
	gi := c.in.Fake().GroupInfo(group)
	if gi == nil {
		return Group{}, false
	}
	g := Group{State: gi.State, Generation: gi.Epoch}
	for _, m := range gi.Members {
		mm := Member{ID: m.MemberID, ClientID: m.ClientID, Assigned: map[string][]int32{}}
		for t, ps := range m.Assignment {
			mm.Assigned[t] = slices.Sorted(slices.Values(ps))
		}
		g.Members = append(g.Members, mm)
	}
	return g, true
}
