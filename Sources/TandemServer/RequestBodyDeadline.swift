import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// A request body must arrive whole within `limit` of its head (PROTOCOL.md §9.14).
///
/// Hummingbird's idle timeout restarts at every body part, so a client sending one byte
/// every 20 s held its connection (and a file descriptor, and the server's shutdown)
/// forever. At the deadline this handler fails the body stream with `RequestBodyTimeout`:
/// the route reading it answers 408 as every error is answered (logged and counted), and
/// the connection is closed once that answer is written; a route that answered without
/// reading the body has its connection closed at the deadline if the body has not ended. When the server shuts
/// down, a body still arriving expires at once.
final class RequestBodyDeadline: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let limit: TimeAmount
    private var timer: Scheduled<Void>?
    private var backstop: Scheduled<Void>?
    /// The current request's answer has begun.
    private var responded = false
    /// The body's deadline passed: what else arrives of it is dropped.
    private var expired = false

    init(limit: TimeAmount) {
        self.limit = limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if expired { return }
        switch unwrapInboundIn(data) {
        case .head:
            responded = false
            arm(context, in: limit)
        case .end:
            timer?.cancel()
            timer = nil
        case .body:
            break
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head:
            responded = true
        case .end where expired:
            // The 408 of a late body: nothing more is read on this connection, so it
            // closes once the answer is out. (An answer written while a body is still on
            // time leaves the deadline running: Hummingbird reads the rest of the body,
            // and the connection closes at the deadline only if that does not end.)
            let written = context.writeAndFlush(data)
            written.cascade(to: promise)
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        case .end, .body:
            break
        }
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The server is stopping: a body still arriving will not be waited for.
        if event is ChannelShouldQuiesceEvent, timer != nil { arm(context, in: .zero) }
        context.fireUserInboundEventTriggered(event)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        backstop?.cancel()
    }

    private func arm(_ context: ChannelHandlerContext, in delay: TimeAmount) {
        timer?.cancel()
        let loop = context.eventLoop.assumeIsolated()
        timer = loop.scheduleTask(in: delay) { [self] in expire(context) }
    }

    private func expire(_ context: ChannelHandlerContext) {
        timer = nil
        guard !responded else {
            context.close(promise: nil)
            return
        }
        expired = true
        context.fireErrorCaught(RequestBodyTimeout())
        // The route answers 408 at once; should nothing be written, the connection goes anyway.
        backstop = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(3)) { context.close(promise: nil) }
    }
}

/// The body did not arrive within the deadline (`RequestBodyDeadline`).
struct RequestBodyTimeout: Error {}
