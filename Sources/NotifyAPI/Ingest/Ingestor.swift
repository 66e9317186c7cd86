import Crypto
import DelayQueue
import Foundation
import Metrics
import NotifyCore
import RedisClient

/// Ingests notifications: for every recipient, one atomic script on the recipient's shard writes the inbox
/// entry, publishes it live and schedules the push job (see `Scripts/ingest.lua`).
///
/// Recipients are grouped by shard, at most ``recipientsPerCall`` per script call (bounding how long one call
/// holds Redis), and every call of a request goes out in one pipelined write.
public struct Ingestor: Sendable {
    public let client: RedisClient
    public let queue: DelayQueue
    public let keys: UserKeys
    public let configuration: IngestConfiguration

    static let recipientsPerCall = 256
    private static let ingested = Counter(label: "notify_notifications_ingested_total")
    private static let deliveries = Counter(label: "notify_inbox_events_written_total")

    public init(client: RedisClient, queue: DelayQueue, keys: UserKeys, configuration: IngestConfiguration) {
        self.client = client
        self.queue = queue
        self.keys = keys
        self.configuration = configuration
    }

    /// Ingests `request` on behalf of the API key `sender`. Retrying with the same idempotency key (from the
    /// header or the body) returns the same ids and writes nothing new; the same key with another request is a
    /// conflict.
    public func ingest(_ request: NotificationRequest, sender: String) async throws -> IngestResult {
        let recipients = try self.validate(request)
        let notificationID = Self.notificationID(sender: sender, idempotencyKey: request.idempotencyKey)
        let members = Self.eventMembers(request, notificationID: notificationID, payload: try self.payloadJSON(request))
        let push = try request.push.map { try Self.pushMembers($0, request: request, notificationID: notificationID) }
        // What tells a retry from a different request under the same idempotency key; without a key the id is
        // random and never seen before, so there is nothing to compare.
        let fingerprint =
            request.idempotencyKey == nil
            ? "-" : Self.fingerprint(members: members, push: push ?? "", recipients: recipients)
        let delayMs = request.push?.delayMs
        // The idempotency window; the script keeps each shard's record longer while it guards a later job.
        let recordTtlMs = self.configuration.recordTtlMs

        if request.idempotencyKey != nil {
            // One key for the whole request catches a reused idempotency key whose recipients fall in other
            // shards; the per-shard records then catch the rest (and cover a partly applied earlier attempt).
            let previous = try await self.client.send(
                "SET", .string(self.keys.idempotencyRecord(notificationID)), .string(fingerprint), "NX", "GET", "PX",
                .integer(recordTtlMs))
            if let previous = previous.string, previous != fingerprint {
                throw Problem.conflict(
                    "the idempotency key was used before with another request; use a new key for a new request")
            }
        }
        var groups: [Int: [String]] = [:]
        for user in recipients {
            groups[self.keys.shards.shard(of: user), default: []].append(user)
        }
        var calls: [RedisScriptCall] = []
        var callUsers: [[String]] = []
        for (shard, users) in groups {
            let prefix: [RedisArgument] = [
                .string(self.queue.clockArgument), .integer(self.queue.configuration.jobGuardMs),
                .string(self.queue.keys.wakeChannel), .integer(shard), .integer(self.queue.configuration.maxSleepMs),
                .string(notificationID), .integer(recordTtlMs), .integer(self.configuration.inboxMaxLength),
                .integer(self.configuration.inboxTtlMs), .string(members), .string(push ?? ""),
                .string(delayMs.map(String.init) ?? ""), .integer(self.configuration.defaultDelayMs),
                .string(request.type.rawValue), .string(request.room ?? ""), .string(fingerprint),
                .string(self.keys.liveChannelPrefix(shard: shard)),
                .integer(self.queue.configuration.maxPendingPerUser), .string(sender),
            ]
            let record = RedisArgument.string(self.keys.notificationRecord(notificationID, shard: shard))
            for chunk in stride(from: 0, to: users.count, by: Self.recipientsPerCall).map({
                users[$0..<min($0 + Self.recipientsPerCall, users.count)]
            }) {
                var keys = self.queue.shardKeys(shard) + [record]
                for user in chunk {
                    keys += [
                        .string(self.keys.inbox(user)), self.queue.pendingKey(shard: shard, userID: user),
                        .string(self.keys.preferences(user)),
                    ]
                }
                calls.append(RedisScriptCall(keys: keys, arguments: prefix + chunk.map { .string($0) }))
                callUsers.append(Array(chunk))
            }
        }

        let replies = try await self.client.eval(Self.script, batch: calls)
        var outcomes: [String: IngestResult.Recipient] = [:]
        for (users, reply) in zip(callUsers, replies) {
            if let message = reply.errorMessage {
                if message.hasPrefix("CONFLICT") {
                    throw Problem.conflict(
                        "the idempotency key was used before with another request; use a new key for a new request")
                }
                throw RedisClientError(.errorReply, message)
            }
            guard let values = reply.array, values.count == users.count * 2 else {
                throw RedisClientError(.protocolError, "ingest returned \(reply.kindDescription)")
            }
            for (index, user) in users.enumerated() {
                outcomes[user] = IngestResult.Recipient(
                    userID: user, eventID: values[index * 2].string ?? "", push: values[index * 2 + 1].string ?? "")
            }
        }
        Self.ingested.increment()
        Self.deliveries.increment(by: outcomes.values.count(where: { $0.push != "duplicate" }))
        return IngestResult(notificationID: notificationID, recipients: recipients.compactMap { outcomes[$0] })
    }

    /// Retracts a notification: cancels the pushes of all its recipients (their inbox entries stay), and marks
    /// every shard so that a retried ingest of it (same idempotency key) pushes nothing, wherever its recipients
    /// fall. `sender` is the API key that must have sent it (`nil`: an admin, who may retract any). `nil` when no
    /// shard knows the notification (never sent, or its record expired).
    public func retract(notificationID: String, sender: String?) async throws -> RetractResult? {
        guard JobID.isValidNotificationID(notificationID) else { return nil }
        let shards = self.keys.shards.all
        // 1. Who sent it, its recipients per shard and how long its records live.
        var reads: [RedisCommand] = []
        for shard in shards {
            let record = RedisArgument.string(self.keys.notificationRecord(notificationID, shard: shard))
            reads += [
                RedisCommand("HMGET", record, "$", "#"), RedisCommand("HKEYS", record), RedisCommand("PTTL", record),
            ]
        }
        let replies = try await self.client.send(batch: reads)
        var recipients: [Int: [String]] = [:]
        var ttlMs = self.configuration.recordTtlMs
        for (index, shard) in shards.enumerated() {
            let fields = try replies[index * 3 + 1].throwingIfError().array?.compactMap(\.string) ?? []
            guard !fields.isEmpty else { continue }
            // Only a record an ingest wrote (`#`) says who sent the notification; marks a retract left behind say
            // nothing, and records older than the sender field (none) are taken as unowned.
            let marks = try replies[index * 3].throwingIfError().array ?? []
            if let sender, marks.count == 2, marks[1].string != nil, let owner = marks[0].string, owner != sender {
                throw Problem.forbidden(
                    "notification \(notificationID) was sent with another API key; only that key or an admin key may "
                        + "retract it")
            }
            ttlMs = max(ttlMs, try replies[index * 3 + 2].throwingIfError().int ?? 0)
            recipients[shard] = fields.filter { !["#", "!", "$"].contains($0) && JobID.isValidUserID($0) }
        }
        guard !recipients.isEmpty else { return nil }
        let owner = sender ?? ""
        // 2. Every shard, known or not: mark the record retracted and cancel the jobs of its recipients.
        let calls = shards.map { shard in
            let users = recipients[shard] ?? []
            return RedisScriptCall(
                keys: self.queue.shardKeys(shard)
                    + [.string(self.keys.notificationRecord(notificationID, shard: shard))]
                    + users.map { self.queue.pendingKey(shard: shard, userID: $0) },
                arguments: [
                    .string(self.queue.clockArgument), .integer(self.queue.configuration.doneRetentionMs),
                    .string(notificationID), .integer(ttlMs), .string(owner),
                ] + users.map { .string($0) })
        }
        let results = try await self.client.eval(Self.retractScript, batch: calls)
        var result = RetractResult(
            notificationID: notificationID, recipients: 0, cancelled: 0, inFlight: 0, alreadyDone: 0)
        for reply in results {
            guard let counts = try reply.throwingIfError().array?.compactMap(\.int), counts.count == 5 else {
                throw RedisClientError(.protocolError, "retract returned \(reply.kindDescription)")
            }
            result.recipients += counts[0]
            result.cancelled += counts[1]
            result.inFlight += counts[2]
            result.alreadyDone += counts[3]
        }
        return result
    }

    // MARK: Validation

    /// Checks every field and returns the recipients without duplicates, in order.
    func validate(_ request: NotificationRequest) throws(Problem) -> [String] {
        let limit = self.configuration.maxRecipients
        guard !request.recipients.isEmpty else {
            throw .invalidRequest("recipients must not be empty", fields: ["recipients"])
        }
        guard request.recipients.count <= limit else {
            throw Problem.tooManyRecipients(request.recipients.count, limit: limit)
        }
        var seen = Set<String>()
        var recipients: [String] = []
        recipients.reserveCapacity(request.recipients.count)
        for (index, user) in request.recipients.enumerated() {
            guard JobID.isValidUserID(user) else {
                throw .invalidRequest(
                    "recipients[\(index)] is not a valid user id (1-128 characters of A-Z a-z 0-9 . _ @ : + -)",
                    fields: ["recipients[\(index)]"])
            }
            if seen.insert(user).inserted { recipients.append(user) }
        }
        if let room = request.room {
            guard Self.isPrintable(room, maxBytes: 200) else {
                throw .invalidRequest("room must be 1-200 bytes without control characters", fields: ["room"])
            }
        }
        if let key = request.idempotencyKey {
            guard Self.isPrintable(key, maxBytes: 255) else {
                throw .invalidRequest(
                    "idempotency_key must be 1-255 bytes without control characters", fields: ["idempotency_key"])
            }
        }
        if let push = request.push {
            try self.validate(push)
        }
        return recipients
    }

    private func validate(_ push: PushOptions) throws(Problem) {
        let maxDelay = self.queue.configuration.maxDelayMs
        if let delay = push.delayMs, !(0...maxDelay).contains(delay) {
            throw .invalidRequest("push.delay_ms must be between 0 and \(maxDelay)", fields: ["push.delay_ms"])
        }
        if let ttl = push.ttlMs, !(0...(28 * 24 * 3_600_000)).contains(ttl) {
            throw .invalidRequest("push.ttl_ms must be between 0 and 28 days", fields: ["push.ttl_ms"])
        }
        for (name, value, limit) in [("title", push.title, 256), ("body", push.body, 2_048)] {
            if let value, value.utf8.count > limit {
                throw .invalidRequest("push.\(name) must be at most \(limit) bytes", fields: ["push.\(name)"])
            }
        }
        if let key = push.collapseKey, !Self.isPrintable(key, maxBytes: 64) {
            throw .invalidRequest("push.collapse_key must be 1-64 bytes", fields: ["push.collapse_key"])
        }
        if let data = push.data {
            let size = data.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
            guard data.count <= 64, size <= 2_048 else {
                throw .invalidRequest("push.data allows at most 64 pairs and 2048 bytes", fields: ["push.data"])
            }
        }
    }

    private static func isPrintable(_ text: String, maxBytes: Int) -> Bool {
        (1...maxBytes).contains(text.utf8.count)
            && !text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f }
    }

    // MARK: Rendering

    /// Deterministic for an idempotency key (per API key, so two backends cannot collide), random otherwise.
    static func notificationID(sender: String, idempotencyKey: String?) -> String {
        guard let idempotencyKey else { return Base64URL.random(byteCount: 16) }
        return Base64URL.encode(SHA256.hash(data: Array("\(sender)\u{0}\(idempotencyKey)".utf8)).prefix(16))
    }

    func payloadJSON(_ request: NotificationRequest) throws -> String {
        let payload = try JSONText.encode(request.payload)
        guard payload.utf8.count <= self.configuration.maxPayloadBytes else {
            throw Problem.payloadTooLarge(limitBytes: self.configuration.maxPayloadBytes, field: "payload")
        }
        return payload
    }

    static func eventMembers(_ request: NotificationRequest, notificationID: String, payload: String) -> String {
        JSONText.members([
            ("notification_id", JSONText.quoted(notificationID)), ("type", JSONText.quoted(request.type.rawValue)),
            ("room", request.room.map(JSONText.quoted)), ("payload", payload),
        ])
    }

    static func pushMembers(_ push: PushOptions, request: NotificationRequest, notificationID: String) throws
        -> String
    {
        JSONText.members([
            ("notification_id", JSONText.quoted(notificationID)), ("type", JSONText.quoted(request.type.rawValue)),
            ("room", request.room.map(JSONText.quoted)), ("push", try JSONText.encode(push)),
        ])
    }

    static func fingerprint(members: String, push: String, recipients: [String]) -> String {
        var hasher = SHA256()
        // Sorted: a retry that lists the same recipients in another order is the same request.
        for part in [members, push, recipients.sorted().joined(separator: ",")] {
            hasher.update(data: Array(part.utf8))
            hasher.update(data: [0])
        }
        return Hex.encode(hasher.finalize().prefix(16))
    }
}
