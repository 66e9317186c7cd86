import DelayQueue
import Foundation
import NIOHTTP1
import NotifyAPI
import Testing

@Suite("API devices and preferences", .timeLimit(.minutes(2)))
struct APIUserSettingsTests {
    static let apnsToken = String(repeating: "ab", count: 32)

    @Test("devices are registered, replaced, listed per user, limited, and removed")
    func devices() async throws {
        try await withAPIServer { api in
            let alice = try await api.token(for: "alice")
            let device = #"{"platform":"apns","token":"\#(Self.apnsToken)","app_id":"com.example.chat","locale":"de"}"#
            #expect(try await api.send(.PUT, "/v1/devices/phone", bearer: alice, json: device).status == 201)
            #expect(try await api.send(.PUT, "/v1/devices/phone", bearer: alice, json: device).status == 200)
            let webpush = #"""
                {"platform":"webpush","subscription":{"endpoint":"https://push.example.net/send/abc",
                "keys":{"p256dh":"BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
                "auth":"tBHItJI5svbpez7KI4CCXg"}}}
                """#
            #expect(try await api.send(.PUT, "/v1/devices/browser", bearer: alice, json: webpush).status == 201)
            let list = try await api.send(.GET, "/v1/devices", bearer: alice).object()
            #expect(Set(list.keys) == ["phone", "browser"])
            #expect((list["phone"] as? [String: Any])?["app_id"] as? String == "com.example.chat")
            let bobs = try await api.send(.GET, "/v1/devices", bearer: try await api.token(for: "bob")).object()
            #expect(bobs.isEmpty)

            let badToken = try await api.send(
                .PUT, "/v1/devices/x", bearer: alice, json: #"{"platform":"apns","token":"nothex"}"#)
            #expect(badToken.status == 400)
            #expect(try badToken.object()["invalidFields"] as? [String] == ["token"])
            let badHook = try await api.send(
                .PUT, "/v1/devices/x", bearer: alice, json: #"{"platform":"webhook","url":"http://plain.example"}"#)
            #expect(try badHook.object()["invalidFields"] as? [String] == ["url"])
            let unknown = try await api.send(
                .PUT, "/v1/devices/x", bearer: alice, json: #"{"platform":"fcm","token":"t","colour":"red"}"#)
            #expect(try unknown.object()["invalidFields"] as? [String] == ["colour"])
            let badID = try await api.send(.PUT, "/v1/devices/a%20b", bearer: alice, json: device)
            #expect(badID.status == 400)

            for index in 2..<20 {
                let fcm = #"{"platform":"fcm","token":"token-\#(index)"}"#
                #expect(try await api.send(.PUT, "/v1/devices/d\(index)", bearer: alice, json: fcm).status == 201)
            }
            let full = try await api.send(.PUT, "/v1/devices/one-more", bearer: alice, json: device)
            #expect(full.status == 409 && full.problemType == "/problems/conflict")

            #expect(try await api.send(.DELETE, "/v1/devices/phone", bearer: alice).status == 204)
            #expect(try await api.send(.DELETE, "/v1/devices/phone", bearer: alice).status == 404)
        }
    }

    @Test("preferences round-trip, and the ingest honours them: muted room, quiet hours in the user's zone, delay")
    func preferences() async throws {
        try await withAPIServer { api in
            let alice = try await api.token(for: "alice")
            let empty = try await api.send(.GET, "/v1/preferences", bearer: alice).object()
            #expect((empty["muted_rooms"] as? [String: Any])?.isEmpty == true && empty["quiet_hours"] is NSNull)

            let put = #"""
                {"muted_rooms":{"noisy":null,"later":"2099-01-01T00:00:00Z"},"muted_types":{"reaction":null},
                 "quiet_hours":{"start":"22:00","end":"07:00","time_zone":"Europe/Berlin"},"push_delay_ms":3000}
                """#
            let saved = try await api.send(.PUT, "/v1/preferences", bearer: alice, json: put)
            #expect(saved.status == 200)
            let back = try await api.send(.GET, "/v1/preferences", bearer: alice).object()
            let rooms = try #require(back["muted_rooms"] as? [String: Any])
            #expect(rooms["noisy"] is NSNull && rooms["later"] as? String == "2099-01-01T00:00:00Z")
            #expect((back["quiet_hours"] as? [String: Any])?["time_zone"] as? String == "Europe/Berlin")
            #expect(back["push_delay_ms"] as? Int == 3000)

            func push(_ json: String) async throws -> String? {
                let result = try await api.notify(json)
                return (result["recipients"] as? [[String: Any]])?.first?["push"] as? String
            }
            #expect(try await push(#"{"recipients":["alice"],"type":"message","room":"noisy"}"#) == "muted")
            #expect(try await push(#"{"recipients":["alice"],"type":"reaction","room":"calm"}"#) == "muted")
            // The queue's clock says 2023-11-14 22:13 UTC: 23:13 in Berlin, inside the quiet hours, so the push
            // waits until 07:00 Berlin (06:00 UTC).
            #expect(try await push(#"{"recipients":["alice"],"type":"message","room":"calm"}"#) == "deferred")
            #expect(try await api.queue.peek(limit: 5).map(\.atMs) == [1_700_028_000_000])

            let bad = try await api.send(
                .PUT, "/v1/preferences", bearer: alice,
                json: #"{"quiet_hours":{"start":"25:00","end":"07:00","time_zone":"Europe/Berlin"}}"#)
            #expect(bad.status == 400)
            #expect(try bad.object()["invalidFields"] as? [String] == ["quiet_hours.start"])
            let zone = try await api.send(
                .PUT, "/v1/preferences", bearer: alice,
                json: #"{"quiet_hours":{"start":"22:00","end":"07:00","time_zone":"Mars/Olympus"}}"#)
            #expect(try zone.object()["invalidFields"] as? [String] == ["quiet_hours.time_zone"])

            // Clearing the preferences lets pushes through at the default delay again.
            #expect(try await api.send(.PUT, "/v1/preferences", bearer: alice, json: "{}").status == 200)
            #expect(try await push(#"{"recipients":["alice"],"type":"message","room":"noisy"}"#) == "scheduled")
        }
    }

    @Test("a backend manages a user's devices and preferences under /v1/users/{user}; the user sees the same")
    func backendAdministration() async throws {
        try await withAPIServer { api in
            let device = #"{"platform":"fcm","token":"registration-token-1"}"#
            let put = try await api.send(.PUT, "/v1/users/alice/devices/tablet", bearer: api.apiKey, json: device)
            #expect(put.status == 201)
            let mine = try await api.send(.GET, "/v1/devices", bearer: try await api.token(for: "alice")).object()
            #expect(Set(mine.keys) == ["tablet"])
            let prefs = #"{"muted_rooms":{"noisy":null}}"#
            #expect(
                try await api.send(.PUT, "/v1/users/alice/preferences", bearer: api.apiKey, json: prefs).status == 200)
            let result = try await api.notify(#"{"recipients":["alice"],"type":"message","room":"noisy"}"#)
            #expect((result["recipients"] as? [[String: Any]])?.first?["push"] as? String == "muted")

            let badUser = try await api.send(.GET, "/v1/users/a%20b/devices", bearer: api.apiKey)
            #expect(badUser.status == 400)
            // A user token cannot reach another user's settings through the backend routes.
            let other = try await api.send(.GET, "/v1/users/alice/devices", bearer: try await api.token(for: "bob"))
            #expect(other.status == 401)
            #expect(try await api.send(.DELETE, "/v1/users/alice/devices/tablet", bearer: api.apiKey).status == 204)
        }
    }
}
