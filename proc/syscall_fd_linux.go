package proc

import "golang.org/x/sys/unix"

// fdArg is the index of the argument of syscall nr that names the fd it
// reads or writes through, for this architecture's syscall numbers.
func fdArg(nr int) (int, bool) {
	switch nr {
	case unix.SYS_READ, unix.SYS_WRITE, unix.SYS_PREAD64, unix.SYS_PWRITE64,
		unix.SYS_READV, unix.SYS_WRITEV, unix.SYS_PREADV, unix.SYS_PWRITEV,
		unix.SYS_PREADV2, unix.SYS_PWRITEV2,
		unix.SYS_FSYNC, unix.SYS_FDATASYNC, unix.SYS_SYNCFS,
		unix.SYS_GETDENTS64, unix.SYS_IOCTL, unix.SYS_FSTAT, unix.SYS_LSEEK,
		unix.SYS_FTRUNCATE, unix.SYS_FALLOCATE, unix.SYS_FLOCK, unix.SYS_FCNTL,
		unix.SYS_FGETXATTR, unix.SYS_FSETXATTR, unix.SYS_FLISTXATTR, unix.SYS_FREMOVEXATTR,
		unix.SYS_COPY_FILE_RANGE, unix.SYS_SPLICE, unix.SYS_READAHEAD:
		return 0, true
	case unix.SYS_SENDFILE: // sendfile(out_fd, in_fd, …): the FUSE side is the file read
		return 1, true
	}
	if archFDArg0(nr) {
		return 0, true
	}
	return 0, false
}
