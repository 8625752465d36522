package kafkatest_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/kafkatest"
)

// Test a consumer against an in-process broker: start it with a topic,
// produce, consume until the group has committed everything, and look at
// the commits and the group.
func Example() {
	cluster, err := kafkatest.Start(kafkatest.WithTopic("orders", 2))
	if err != nil {
		panic(err)
	}
	defer cluster.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var recs []kafkatest.Record
	for i := range 10 {
		recs = append(recs, kafkatest.Record{
			Partition: int32(i % 2),
			Key:       []byte("customer-" + strconv.Itoa(i%3)),
			Value:     []byte("order-" + strconv.Itoa(i)),
			Headers:   []kafkatest.Header{{Key: "source", Value: []byte("example")}},
		})
	}
	if _, err := cluster.Produce(ctx, "orders", recs...); err != nil {
		panic(err)
	}

	c, err := franz.NewConsumer(cluster.Addrs(), "billing", []string{"orders"},
		franz.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		franz.WithCommitInterval(50*time.Millisecond))
	if err != nil {
		panic(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() {
		done <- c.Run(runCtx, func(ctx context.Context, rec *kgo.Record) error { return nil })
	}()
	if err := cluster.WaitCommitted(ctx, "billing", "orders"); err != nil {
		panic(err)
	}
	g, _ := cluster.Group("billing")
	fmt.Println("group:", g.State, len(g.Members), "member, partitions", g.Members[0].Assigned["orders"])
	stop()
	fmt.Println("Run:", <-done)

	com, err := cluster.Committed(ctx, "billing", "orders")
	if err != nil {
		panic(err)
	}
	fmt.Println("committed:", com[0].Offset, com[1].Offset)
	// Output:
	// group: Stable 1 member, partitions [0 1]
	// Run: <nil>
	// committed: 5 5
}
