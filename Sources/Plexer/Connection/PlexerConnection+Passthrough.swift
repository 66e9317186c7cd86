import Foundation
import NIOCore
import NIOWebSocket
import NotifyCore

/// One WebSocket channel of a socket: its upstream socket, and while the handshake runs, the messages that wait
/// for it.
struct Passthrough {
    struct Message {
        var id: RequestID?
        var opcode: WebSocketOpcode
        var data: ByteBuffer
    }

    let socket: UpstreamSocket
    /// `nil` once the upstream socket is open.
    var waiting: [Message]?
    /// The upstream's messages held while the client's socket takes nothing (the upstream socket stops reading
    /// meanwhile; these arrived before it did).
    var parked: [ByteBuffer] = []
    var parkedBytes = 0
}

extension PlexerConnection {
    /// Messages that may wait for an upstream socket's handshake.
    static let maxWaitingUpstreamMessages = 16

    /// A message for a WebSocket channel (`data`, `text` or `binary`), or its `close` operation. The first message
    /// opens the upstream socket.
    func passthroughRequest(_ request: PlexerRequest, route: UpstreamRoute) throws(PlexerFailure) {
        if request.members["op"] != nil {
            try request.allowOnly(["op"])
            let operation = try request.operation()
            guard operation == "close" else {
                throw PlexerFailure("unknown_op", "channel \(route.channel) has no operation \(operation)")
            }
            self.closePassthrough(route.channel, code: .normalClosure)
            if let id = request.id { self.send(PlexerFrames.reply(channel: route.channel, id: id)) }
            return
        }
        try request.allowOnly(["data", "text", "binary"])
        let message = try self.upstreamMessage(request)
        guard var passthrough = self.passthroughs[route.channel] else {
            return try self.openPassthrough(route, first: message)
        }
        guard var waiting = passthrough.waiting else {
            return self.relay(message, channel: route.channel, to: passthrough.socket)
        }
        guard waiting.count < Self.maxWaitingUpstreamMessages else {
            throw PlexerFailure(
                "too_many_in_flight",
                "channel \(route.channel) is still connecting; at most \(Self.maxWaitingUpstreamMessages) messages wait"
            )
        }
        waiting.append(message)
        passthrough.waiting = waiting
        self.passthroughs[route.channel] = passthrough
    }

    private func upstreamMessage(_ request: PlexerRequest) throws(PlexerFailure) -> Passthrough.Message {
        // An explicit null counts as absent (`"data": null` is not a message of the text `null`).
        let given = ["data", "text", "binary"].filter { request.members[$0] != nil && request.members[$0] != .null }
        guard given.count == 1 else { throw .badFrame("send exactly one of data, text or binary") }
        let limit = self.configuration.maxMessageBytes
        switch given[0] {
        case "data":
            let text: String
            do {
                text = try JSONText.encode(request.members["data"])
            } catch {
                throw .invalid("data could not be encoded as JSON")
            }
            return .init(id: request.id, opcode: .text, data: ByteBuffer(string: text))
        case "text":
            let text = try request.string("text", maxBytes: limit) ?? ""
            return .init(id: request.id, opcode: .text, data: ByteBuffer(string: text))
        default:
            guard let base64 = try request.string("binary", maxBytes: limit),
                let bytes = Data(base64Encoded: base64)
            else { throw .invalid("binary must be base64") }
            return .init(id: request.id, opcode: .binary, data: ByteBuffer(bytes: bytes))
        }
    }

    private func openPassthrough(_ route: UpstreamRoute, first: Passthrough.Message) throws(PlexerFailure) {
        guard let context else { return }
        var identity: [(name: String, value: String)] = []
        switch route.identity {
        case .jwt:
            guard let token = self.token else { throw PlexerFailure("internal", "the socket's token is not kept") }
            identity.append(("authorization", "Bearer \(token)"))
        case .signed:
            let target = route.handshakeTarget
            let timestamp = String(Int64(Date().timeIntervalSince1970))
            identity.append(("x-notify-user", self.user))
            identity.append(("x-notify-timestamp", timestamp))
            identity.append(
                (
                    "x-notify-signature",
                    IdentitySignature.sign(
                        secret: route.secret ?? "", user: self.user, timestamp: timestamp, method: "GET",
                        target: target, body: nil)
                ))
        }
        let loop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: loop)
        let channel = route.channel
        let socket = UpstreamSocket { socket, event in
            handler.value.upstreamEvent(event, channel: channel, from: socket)
        }
        self.passthroughs[channel] = Passthrough(socket: socket, waiting: [first])
        let bound = NIOLoopBound(socket, eventLoop: loop)
        self.services.sockets.connect(route, headers: identity, socket: socket, on: loop).whenComplete { result in
            handler.value.passthroughOpened(channel, socket: bound.value, result: result)
        }
    }

    private func passthroughOpened(_ channel: String, socket: UpstreamSocket, result: Result<Void, any Error>) {
        guard var passthrough = self.passthroughs[channel], passthrough.socket === socket,
            let waiting = passthrough.waiting
        else {
            // The client closed the channel, or its socket, meanwhile.
            socket.close(code: .goingAway)
            return
        }
        switch result {
        case .success:
            passthrough.waiting = nil
            self.passthroughs[channel] = passthrough
            for (index, message) in waiting.enumerated() {
                guard self.passthroughs[channel]?.socket === socket else {
                    // A relay closed the socket (the upstream took nothing): the rest are answered, not dropped.
                    let failure = PlexerFailure("upstream_unavailable", "channel \(channel) was closed")
                    for rest in waiting[index...] {
                        self.send(PlexerFrames.error(channel: channel, id: rest.id, failure))
                    }
                    break
                }
                self.relay(message, channel: channel, to: socket)
            }
        case .failure(let error):
            self.passthroughs[channel] = nil
            let failure = error as? PlexerFailure ?? PlexerFailure("upstream_unavailable", "\(channel) is unreachable")
            for message in waiting { self.send(PlexerFrames.error(channel: channel, id: message.id, failure)) }
        }
    }

    /// Writes one message upstream; an upstream that lets more than `maxOutboundBytes` pile up is closed.
    private func relay(_ message: Passthrough.Message, channel: String, to socket: UpstreamSocket) {
        guard socket.bufferedBytes <= self.configuration.maxOutboundBytes else {
            self.send(
                PlexerFrames.error(
                    channel: channel, id: message.id,
                    PlexerFailure("upstream_unavailable", "channel \(channel) does not take messages fast enough")))
            self.services.sockets.failures.record(channel, .tooSlow)
            self.closePassthrough(channel, code: .policyViolation, reason: "too slow")
            self.send(PlexerFrames.upstreamClosed(channel: channel, code: 1008, reason: "the upstream was too slow"))
            return
        }
        guard socket.send(message.opcode, message.data) else {
            return self.send(
                PlexerFrames.error(
                    channel: channel, id: message.id,
                    PlexerFailure("upstream_unavailable", "channel \(channel)'s socket is closing; send again")))
        }
        if let id = message.id { self.send(PlexerFrames.reply(channel: channel, id: id)) }
    }

    private func upstreamEvent(_ event: UpstreamSocket.Event, channel: String, from socket: UpstreamSocket) {
        guard self.passthroughs[channel]?.socket === socket else { return }
        switch event {
        case .message(let opcode, let data):
            guard let frame = PlexerFrames.upstreamMessage(channel: channel, opcode: opcode, data: data) else {
                self.closePassthrough(channel, code: .dataInconsistentWithMessage, reason: "text must be UTF-8")
                self.send(PlexerFrames.upstreamClosed(channel: channel, code: 1007, reason: "invalid UTF-8 text"))
                return
            }
            self.deliver(frame, channel: channel)
        case .closed(let code, let reason):
            self.passthroughs[channel] = nil
            self.send(PlexerFrames.upstreamClosed(channel: channel, code: code, reason: reason))
        }
    }

    /// Bytes waiting in the client's socket beyond which upstream messages are parked: half the socket's limit,
    /// so the `notify` channel and replies never find it full because of an upstream (4004).
    private var passthroughBudget: Int { self.configuration.maxOutboundBytes / 2 }

    /// Writes an upstream's message to the client, or parks it while the client's socket is full. A socket that
    /// stops taking writes stops its upstreams' reading (`pausePassthroughs`); what was read before that is parked,
    /// up to twice the socket's limit, past which only that channel is closed (1008).
    private func deliver(_ frame: ByteBuffer, channel: String) {
        guard let context, var passthrough = self.passthroughs[channel] else { return }
        let pending = (try? context.channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes)) ?? 0
        guard passthrough.parked.isEmpty, pending <= self.passthroughBudget else {
            passthrough.socket.setReading(false)
            passthrough.parked.append(frame)
            passthrough.parkedBytes += frame.readableBytes
            self.passthroughs[channel] = passthrough
            if passthrough.parkedBytes > 2 * self.configuration.maxOutboundBytes {
                self.passthroughs[channel] = nil
                self.services.sockets.failures.record(channel, .tooSlow)
                passthrough.socket.close(code: .policyViolation, reason: "the client takes messages too slowly")
                self.send(
                    PlexerFrames.upstreamClosed(
                        channel: channel, code: 1008, reason: "the client did not take the upstream's messages"))
            }
            return
        }
        context.writeAndFlush(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: frame)), promise: nil)
        if !context.channel.isWritable { passthrough.socket.setReading(false) }
    }

    /// The client's socket takes no more writes now: every upstream stops reading.
    func pausePassthroughs() {
        for passthrough in self.passthroughs.values where passthrough.waiting == nil {
            passthrough.socket.setReading(false)
        }
    }

    /// The client's socket takes writes again: parked messages go out first, then the upstreams read again.
    func resumePassthroughs() {
        guard let context else { return }
        for (channel, var passthrough) in self.passthroughs where passthrough.waiting == nil {
            while let frame = passthrough.parked.first {
                let pending = (try? context.channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes)) ?? 0
                guard pending <= self.passthroughBudget else { break }
                passthrough.parked.removeFirst()
                passthrough.parkedBytes -= frame.readableBytes
                context.write(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: frame)), promise: nil)
            }
            self.passthroughs[channel] = passthrough
            if passthrough.parked.isEmpty { passthrough.socket.setReading(true) }
        }
        context.flush()
    }

    func closePassthrough(_ channel: String, code: WebSocketErrorCode, reason: String = "") {
        guard let passthrough = self.passthroughs.removeValue(forKey: channel) else { return }
        passthrough.socket.close(code: code, reason: reason)
        for message in passthrough.waiting ?? [] {
            self.send(
                PlexerFrames.error(
                    channel: channel, id: message.id,
                    PlexerFailure("upstream_unavailable", "channel \(channel) was closed before its socket opened")))
        }
    }

    /// Closes every upstream socket with the client's.
    func stopPassthroughs() {
        for passthrough in self.passthroughs.values { passthrough.socket.close(code: .goingAway) }
        self.passthroughs.removeAll()
    }
}
