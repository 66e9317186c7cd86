import Foundation
import NotifyCore
import RedisClient
import Testing

@testable import NotifyAPI

/// The stream's connection-level paths (``SSEStreamHandler``): pipelining with the router's requests, and a stream
/// outliving a dropped pub/sub connection.
@Suite("SSE stream connections", .timeLimit(.minutes(2)))
struct StreamConnectionTests {
    @Test("a stream pipelined behind another request starts after its answer; requests behind the stream get none")
    func pipelinedBehindRouterRequest() async throws {
        let tokens = UserTokenConfiguration(
            issuer: APITestServer.issuer, audience: APITestServer.audience, hs256Secret: APITestServer.hs256Secret,
            leewaySeconds: 0)
        try await withAPIServer(tokens: tokens) { api in
            let port = try #require(URL(string: api.baseURL)?.port)
            // The token expires in 6 s, so the stream ends by itself and the connection closes (3 s once ran out
            // before the stream started, on a machine loaded by the whole suite).
            let token = try await api.token(for: "alice", expiresIn: 6)
            let headers = "Host: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
            let client = try StalledStreamClient(
                port: port,
                request: "GET /v1/inbox HTTP/1.1\r\n\(headers)\r\n" + "GET /v1/stream HTTP/1.1\r\n\(headers)\r\n"
                    + "GET /v1/inbox HTTP/1.1\r\n\(headers)\r\n")
            let seen = try await client.readToEnd(requireClose: true)
            // The inbox answer has a length, so the stream's status line follows its body on the same line.
            #expect(seen.components(separatedBy: "HTTP/1.1 200 OK\r\n").count == 3, "two answers: \(seen)")
            #expect(!seen.contains("HTTP/1.1 4") && !seen.contains("HTTP/1.1 5"))
            let inbox = try #require(seen.range(of: #"{"events":[]"#))
            let stream = try #require(seen.range(of: "text/event-stream"))
            #expect(inbox.lowerBound < stream.lowerBound, "the router's answer comes first")
            #expect(seen.contains(": ready") && seen.contains("event: token-expired"))
        }
    }

    @Test("a bad token on a stream gets 401 problem JSON naming the stream, and the connection closes")
    func refusedStream() async throws {
        try await withAPIServer { api in
            let port = try #require(URL(string: api.baseURL)?.port)
            let token = try await api.token(for: "alice", secret: "another-secret-another-secret-0123456789")
            let client = try StalledStreamClient(
                port: port,
                request:
                    "GET /v1/stream?since=1-0 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n\r\n")
            let seen = try await client.readToEnd(requireClose: true)
            #expect(seen.hasPrefix("HTTP/1.1 401 Unauthorized\r\n"), "\(seen)")
            #expect(seen.lowercased().contains("content-type: application/problem+json"))
            #expect(seen.lowercased().contains("www-authenticate: bearer"))
            let body = try #require(seen.components(separatedBy: "\r\n\r\n").last)
            let problem = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
            #expect(problem["instance"] as? String == "/v1/stream" && problem["status"] as? Int == 401)
        }
    }

    @Test("when the pub/sub connection drops, a stream replays what was published meanwhile, once, and goes on live")
    func outlivesPubSubDrop() async throws {
        // The subscriber reconnects half a second after the drop: the events sent meanwhile can only be replayed.
        try await withAPIServer(subscriberReconnectDelayMs: 500) { api in
            let stream = try await SSEStream.open(api, token: try await api.token(for: "alice"))
            var events = stream.events.makeAsyncIterator()
            _ = try await stream.waitUntilReady(&events)
            let before = try await api.subscriberConnects()
            let killed = try await api.client.send("CLIENT", "KILL", "TYPE", "pubsub")
            #expect(killed == .integer(1))
            // Published while no subscription exists: only the replay can bring them.
            var sent: [String?] = []
            for _ in 0..<3 {
                sent.append(try await api.notifyEventID())
            }
            var received: [String?] = []
            for _ in 0..<3 { received.append(try await events.nextNotification()?.id) }
            #expect(received == sent)
            #expect(try await api.subscriberConnects() > before, "the subscriber reconnected")
            // Live again, and nothing came twice: the next event is the next one.
            let id = try await api.notifyEventID()
            #expect(try await events.nextNotification()?.id == id)
            stream.close()
        }
    }

    @Test("a stream's request errors: no token is 401, a bad Last-Event-ID with a good token 400, access_token works")
    func requestErrors() async throws {
        try await withAPIServer { api in
            let port = try #require(URL(string: api.baseURL)?.port)
            let token = try await api.token(for: "alice")
            let cases: [(request: String, status: String)] = [
                ("GET /v1/stream HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 401 "),
                (
                    "GET /v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nLast-Event-ID: nope\r\n\r\n",
                    "HTTP/1.1 400 "
                ),
                (
                    "GET /v1/stream?since=nope HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer bad.token\r\n\r\n",
                    "HTTP/1.1 401 "
                ),
            ]
            for (request, status) in cases {
                let seen = try await StalledStreamClient(port: port, request: request).readToEnd(requireClose: true)
                #expect(seen.hasPrefix(status), "\(request): \(seen)")
                #expect(seen.lowercased().contains("content-type: application/problem+json"))
            }
            // EventSource cannot set headers: the token comes in the query, and the stream works.
            let stream = try await SSEStream.open(api, path: "/v1/stream?access_token=\(token)", token: nil)
            var events = stream.events.makeAsyncIterator()
            _ = try await stream.waitUntilReady(&events)
            let id = try await api.notifyEventID()
            #expect(try await events.nextNotification()?.id == id)
            stream.close()
        }
    }

    @Test("without the stream handler, the router's route serves the same stream: resume, live, token expiry")
    func routerRoute() async throws {
        let tokens = UserTokenConfiguration(
            issuer: APITestServer.issuer, audience: APITestServer.audience, hs256Secret: APITestServer.hs256Secret,
            leewaySeconds: 0)
        try await withAPIServer(tokens: tokens, streamHandler: false) { api in
            let firstID = try await api.notifyEventID()
            let secondID = try await api.notifyEventID()
            // The token outlives the replay and the live event on a loaded machine (3 s did not), then ends the stream.
            let stream = try await SSEStream.open(
                api, token: try await api.token(for: "alice", expiresIn: 8), lastEventID: firstID)
            var events = stream.events.makeAsyncIterator()
            #expect(try await stream.waitUntilReady(&events).map(\.id) == [secondID], "the replay after the resume id")
            let liveID = try await api.notifyEventID()
            #expect(try await events.nextNotification()?.id == liveID)
            var rest: [String?] = []
            while let event = try await events.next() {
                if event.comment == nil { rest.append(event.event) }
            }
            #expect(rest == ["token-expired"])
        }
    }

    @Test("the router's spellings of the path (repeated or trailing slashes) reach the stream handler too")
    func pathSpellings() {
        for path in ["/v1/stream", "/v1/stream?since=1-0", "//v1/stream", "/v1//stream/", "/v1/stream/?x=1"] {
            #expect(SSEStreamHandler.isStreamPath(path), "\(path)")
        }
        for path in ["/v1/streams", "/v1/stream/x", "/v1", "v1/stream", "/v1/inbox?/v1/stream"] {
            #expect(!SSEStreamHandler.isStreamPath(path), "\(path)")
        }
    }
}

extension APITestServer {
    /// How many pub/sub connections Redis has accepted in all (`CLIENT LIST TYPE pubsub` ids only grow).
    func subscriberConnects() async throws -> Int {
        let list = try await self.client.send("CLIENT", "LIST", "TYPE", "pubsub").string ?? ""
        return list.split(separator: "\n").compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("id=") }.flatMap { Int($0.dropFirst(3)) }
        }.max() ?? 0
    }
}
