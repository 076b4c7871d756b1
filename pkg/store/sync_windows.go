package store

import "os"

func syncData(f *os.File) error { return f.Sync() }

// syncDir does nothing: Windows cannot flush a directory handle, and NTFS journals its entries.
func syncDir(*os.File) error { return nil }
