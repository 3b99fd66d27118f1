package testenv

import (
	"context"
	"errors"
	"fmt"
)

// AddFakeNodes registers n more kwok nodes (kwok-node-1 … kwok-node-n), each
// with room for 1000 pods, and waits until they are Ready. It needs an
// environment started WithControllers; scale benchmarks use it when the pods
// outgrow the first node.
func (e *Environment) AddFakeNodes(ctx context.Context, n int) error {
	if len(e.procs) == 0 {
		return errors.New("fake nodes need kwok: start the environment WithControllers()")
	}
	for i := 1; i <= n; i++ {
		if err := e.addFakeNode(ctx, fmt.Sprintf("kwok-node-%d", i)); err != nil {
			return err
		}
	}
	return nil
}
