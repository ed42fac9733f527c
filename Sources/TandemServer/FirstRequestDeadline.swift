import HummingbirdCore
import Logging
import NIOCore

/// A connection must finish its first request's head within `limit`, and one that has not
/// when the server shuts down is closed at once.
///
/// Until the first head arrives, a connection sits in the WebSocket upgrade negotiation,
/// which neither Hummingbird's idle timeout nor its shutdown reaches: a connection that
/// sent nothing (or half a head) stayed open forever, holding a file descriptor, and kept
/// `tandem serve` from stopping on SIGTERM. Later requests on a kept-alive connection are
/// Hummingbird's to time out and close, and their bodies `RequestBodyDeadline`'s.
///
/// It also bounds shutdown: once the server is told to stop, every connection, whatever it
/// is doing (a body trickling in, a pull answer its client does not read, a WebSocket that
/// never answers the close), is closed after `shutdownGrace`, so SIGTERM stops the server
/// within seconds (PROTOCOL.md §9.14).
struct FirstRequestDeadline<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value
    let inner: Inner
    let limit: TimeAmount
    var shutdownGrace: TimeAmount = .seconds(5)

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            try channel.pipeline.syncOperations.addHandler(UntilFirstHead(limit: limit, shutdownGrace: shutdownGrace), position: .first)
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

/// Watches the raw bytes for the end of the first request head (an empty line), then only
/// passes bytes on; closes the connection if that head takes longer than `limit`, at once
/// if the server asks its connections to wind down first, and `shutdownGrace` after that
/// request otherwise. It stays in the pipeline (an upgrade to a WebSocket keeps it too).
final class UntilFirstHead: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let limit: TimeAmount
    let shutdownGrace: TimeAmount
    private var deadline: Scheduled<Void>?
    private var forcedClose: Scheduled<Void>?
    /// How much of `\r\n\r\n` (the empty line that ends a head) the bytes so far end with.
    private var matched = 0
    private var headDone = false

    init(limit: TimeAmount, shutdownGrace: TimeAmount) {
        self.limit = limit
        self.shutdownGrace = shutdownGrace
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: limit) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        forcedClose?.cancel()
        forcedClose = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !headDone else {
            context.fireChannelRead(data)
            return
        }
        // Only `\r\n\r\n`, as the HTTP parser wants: a head it would refuse (bare line feeds)
        // leaves the deadline running, since nothing else would close that connection.
        for byte in unwrapInboundIn(data).readableBytesView where !headDone {
            switch (matched, byte) {
            case (0, 13), (2, 13), (1, 10), (3, 10): matched += 1
            case (_, 13): matched = 1
            default: matched = 0
            }
            headDone = matched == 4
        }
        context.fireChannelRead(data)
        if headDone {
            deadline?.cancel()
            deadline = nil
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            guard headDone else {
                context.close(promise: nil)
                return
            }
            if forcedClose == nil {
                let channel = context.channel
                forcedClose = context.eventLoop.scheduleTask(in: shutdownGrace) { channel.close(promise: nil) }
            }
        }
        context.fireUserInboundEventTriggered(event)
    }
}
