package gitwrite

// SetBeforePush sets a hook run before each push, for tests.
func (w *Writer) SetBeforePush(f func(attempt int)) { w.beforePush = f }
