package wedgefs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

const (
	// DataFile is the name of the only file in the root.
	DataFile = "data"
	// HangName is the name whose LOOKUP ModeLookup never answers; in other
	// modes it does not exist.
	HangName = "hang"
	// Content is what DataFile holds.
	Content = "wedgefs data\n"
)

const dataIno = 2

// root is the root directory: it resolves DataFile itself so that a LOOKUP
// of HangName reaches the server and can be parked.
type root struct {
	fs.Inode
	srv *Server
}

var (
	_ fs.NodeOnAdder   = (*root)(nil)
	_ fs.NodeLookuper  = (*root)(nil)
	_ fs.NodeReaddirer = (*root)(nil)
	_ fs.NodeOpener    = (*file)(nil)
	_ fs.NodeReader    = (*file)(nil)
	_ fs.NodeFlusher   = (*file)(nil)
)

func (r *root) OnAdd(ctx context.Context) {
	child := r.NewPersistentInode(ctx, &file{srv: r.srv}, fs.StableAttr{Mode: syscall.S_IFREG, Ino: dataIno})
	r.AddChild(DataFile, child, false)
}

func (r *root) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if name == HangName && r.srv.mode == ModeLookup {
		return nil, r.srv.park("LOOKUP")
	}
	if name != DataFile {
		return nil, syscall.ENOENT
	}
	fileAttr(&out.Attr)
	return r.GetChild(DataFile), 0
}

func (r *root) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o755
	out.Nlink = 2
	return 0
}

func (r *root) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	return fs.NewListDirStream([]fuse.DirEntry{{Name: DataFile, Mode: syscall.S_IFREG, Ino: dataIno}}), 0
}

func (r *root) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno { return 0 }

// file is DataFile.
type file struct {
	fs.Inode
	srv *Server
}

func fileAttr(a *fuse.Attr) {
	a.Mode = syscall.S_IFREG | 0o444
	a.Nlink = 1
	a.Ino = dataIno
	a.Size = uint64(len(Content))
}

func (f *file) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	fileAttr(&out.Attr)
	return 0
}

// Open asks for direct I/O unless the server is Cached: without it a READ
// could be served from the page cache and never reach the server.
func (f *file) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		return nil, 0, syscall.EROFS
	}
	if f.srv.cached {
		return nil, 0, 0
	}
	return nil, fuse.FOPEN_DIRECT_IO, 0
}

func (f *file) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if f.srv.mode == ModeRead {
		return nil, f.srv.park("READ")
	}
	if off >= int64(len(Content)) {
		return fuse.ReadResultData(nil), 0
	}
	return fuse.ReadResultData([]byte(Content[off:])), 0
}

// Flush is implemented in every mode: answering ENOSYS once would make the
// kernel stop sending FLUSH on this connection for good.
func (f *file) Flush(ctx context.Context, fh fs.FileHandle) syscall.Errno {
	if f.srv.mode == ModeFlush {
		return f.srv.park("FLUSH")
	}
	return 0
}
