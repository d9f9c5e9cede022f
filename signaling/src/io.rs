//! A socket wrapper that reads from the kernel in large chunks while holding no buffer at rest.
//!
//! tungstenite reads at most its `read_buffer_size` per call, and keeps that buffer allocated for
//! the connection's whole life. Small is right for memory (most connections sit idle), but a
//! 4 KiB signal (5.5 KB of base64url) then costs six `read` system calls. Below tungstenite this
//! wrapper reads up to [`CHUNK`] at once into a chunk on the stack and keeps only what the
//! caller could not take yet, so an idle connection still holds nothing here.
//! Measured on one core with 2,000 clients ping-ponging 4 KiB: 18.5k messages/s with 1 KiB
//! reads, 31.5k with 8 KiB ones (docs/benchmarks.md).

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes read from the kernel at a time when the caller asks for less.
pub(crate) const CHUNK: usize = 8 * 1024;

/// `S` with chunked reads; writes pass straight through.
#[derive(Debug)]
pub(crate) struct ChunkedReads<S> {
    inner: S,
    /// Bytes read but not yet handed out are `rest[pos..]`; unallocated when there are none.
    rest: Vec<u8>,
    pos: usize,
}

impl<S> ChunkedReads<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            rest: Vec::new(),
            pos: 0,
        }
    }

    /// Hands out what is kept, up to `out`'s room; frees it once it is drained.
    fn drain_into(&mut self, out: &mut ReadBuf<'_>) {
        let n = out.remaining().min(self.rest.len() - self.pos);
        out.put_slice(&self.rest[self.pos..self.pos + n]);
        self.pos += n;
        if self.pos == self.rest.len() {
            self.rest = Vec::new();
            self.pos = 0;
        }
    }

    /// Bytes this wrapper holds allocated (for tests: zero whenever nothing is buffered).
    #[cfg(test)]
    fn allocated(&self) -> usize {
        self.rest.capacity()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ChunkedReads<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.rest.len() {
            this.drain_into(out);
            return Poll::Ready(Ok(()));
        }
        if out.remaining() >= CHUNK {
            // The caller's buffer is big enough (hyper's is): no copy.
            return Pin::new(&mut this.inner).poll_read(cx, out);
        }
        // The chunk lives on the stack, uninitialised (never zeroed, never allocated); only
        // what `out` cannot take now is kept, on the heap, until it is handed out.
        let mut chunk = [const { MaybeUninit::<u8>::uninit() }; CHUNK];
        let mut read = ReadBuf::uninit(&mut chunk);
        match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            // Zero bytes is the end of the stream: `out` stays empty, which says so.
            Poll::Ready(Ok(())) => {
                let got = read.filled();
                let n = out.remaining().min(got.len());
                out.put_slice(&got[..n]);
                if n < got.len() {
                    this.rest = got[n..].to_vec();
                    this.pos = 0;
                }
                Poll::Ready(Ok(()))
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ChunkedReads<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Counts the reads that reach the wrapped stream.
    struct Counting<S> {
        inner: S,
        reads: usize,
    }

    impl<S: AsyncRead + Unpin> AsyncRead for Counting<S> {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            out: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            let poll = Pin::new(&mut this.inner).poll_read(cx, out);
            if poll.is_ready() {
                this.reads += 1;
            }
            poll
        }
    }

    #[tokio::test]
    async fn small_reads_of_a_large_message_reach_the_socket_once_and_keep_every_byte() {
        let message: Vec<u8> = (0..5_500u32).map(|i| (i % 251) as u8).collect();
        let (mut tx, rx) = tokio::io::duplex(64 * 1024);
        tx.write_all(&message).await.unwrap();
        let mut reader = ChunkedReads::new(Counting {
            inner: rx,
            reads: 0,
        });
        let mut got = Vec::new();
        let mut piece = [0u8; 1024];
        while got.len() < message.len() {
            let n = reader.read(&mut piece).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&piece[..n]);
        }
        assert_eq!(got, message);
        assert_eq!(reader.inner.reads, 1, "one read of the socket for 5.5 KB");
        assert_eq!(reader.allocated(), 0, "the chunk is freed once drained");
    }

    #[tokio::test]
    async fn a_waiting_reader_holds_no_chunk_and_sees_the_end_of_the_stream() {
        let (mut tx, rx) = tokio::io::duplex(1024);
        let mut reader = ChunkedReads::new(rx);
        let mut piece = [0u8; 16];
        // Nothing to read yet: the read is pending and nothing stays allocated.
        assert!(reader.read(&mut piece).now_or_never().is_none());
        assert_eq!(reader.allocated(), 0);
        tx.write_all(b"abc").await.unwrap();
        drop(tx);
        assert_eq!(reader.read(&mut piece).await.unwrap(), 3);
        assert_eq!(&piece[..3], b"abc");
        assert_eq!(reader.read(&mut piece).await.unwrap(), 0);
    }

    /// A socket that fails every read.
    struct Failing;

    impl AsyncRead for Failing {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()))
        }
    }

    #[tokio::test]
    async fn a_failed_read_reaches_the_caller_and_keeps_nothing() {
        let mut reader = ChunkedReads::new(Failing);
        let mut piece = [0u8; 16];
        let err = reader.read(&mut piece).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(reader.allocated(), 0);
    }

    #[tokio::test]
    async fn large_reads_pass_straight_through_and_writes_reach_the_peer() {
        let (mut near, far) = tokio::io::duplex(64 * 1024);
        let mut wrapped = ChunkedReads::new(far);
        near.write_all(&[7u8; 100]).await.unwrap();
        let mut big = vec![0u8; CHUNK];
        assert_eq!(wrapped.read(&mut big).await.unwrap(), 100);
        assert_eq!(wrapped.allocated(), 0);
        wrapped.write_all(b"pong").await.unwrap();
        let mut back = [0u8; 4];
        near.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"pong");
    }
}
