import Foundation
import NotifyCore

extension LiveServer {
    /// nginx with nchan (Debian `nginx` + `libnginx-mod-nchan`), one worker, storing messages in a Redis of its
    /// own: an SSE (EventSource) subscriber at `/sub/<user>`, a WebSocket subscriber at `/ws/<user>` and a publisher
    /// at `/pub/<user>`, one channel per user, as a chat backend would set it up.
    static func startNchan() async throws -> LiveServer {
        guard let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"].first(where: FileManager.default.isExecutableFile)
        else {
            throw BenchError(
                "nginx not found (Debian packages nginx and libnginx-mod-nchan; ops/bootstrap installs them)")
        }
        let modules = ["/usr/lib/nginx/modules/ngx_nchan_module.so", "/usr/share/nginx/modules/ngx_nchan_module.so"]
        guard let module = modules.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw BenchError("the nchan module is not installed (Debian package libnginx-mod-nchan)")
        }
        let redis = try await LocalRedisServer.start()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "notify-bench-nchan-\(UUID().uuidString.prefix(8))")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let port = try FreePort.find()
            let configuration = directory.appendingPathComponent("nginx.conf")
            try Self.nchanConfiguration(
                module: module, directory: directory.path, port: port, redisPort: redis.port
            ).write(to: configuration, atomically: true, encoding: .utf8)
            let process = try ChildProcess(
                executable: nginx, arguments: ["-p", directory.path, "-c", configuration.path])
            return try await LiveServer(kind: .nchan, port: port, redis: redis, process: process, directory: directory)
                .ready(path: "/healthz")
        } catch {
            redis.stop()
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    static func nchanConfiguration(module: String, directory: String, port: Int, redisPort: Int) -> String {
        """
        load_module \(module);
        daemon off;
        worker_processes 1;
        pid \(directory)/nginx.pid;
        error_log \(directory)/error.log warn;
        events { worker_connections 60000; }  # nchan counts more than its sockets: 19,000 ran out at 17,750 streams
        http {
            access_log off;
            keepalive_requests 100000000;  # as Notify: a keep-alive connection is never closed for its count
            client_body_temp_path \(directory)/body;
            proxy_temp_path \(directory)/proxy;
            fastcgi_temp_path \(directory)/fastcgi;
            uwsgi_temp_path \(directory)/uwsgi;
            scgi_temp_path \(directory)/scgi;
            upstream bench_redis { nchan_redis_server redis://127.0.0.1:\(redisPort); }
            server {
                listen 127.0.0.1:\(port) backlog=4096;
                location ~ ^/pub/(\\w+)$ {
                    nchan_publisher;
                    nchan_channel_id $1;
                    nchan_redis_pass bench_redis;
                    nchan_message_buffer_length 100;
                    nchan_message_timeout 1h;
                }
                location ~ ^/sub/(\\w+)$ {
                    nchan_subscriber eventsource;
                    nchan_channel_id $1;
                    nchan_redis_pass bench_redis;
                }
                location ~ ^/ws/(\\w+)$ {
                    nchan_subscriber websocket;
                    nchan_channel_id $1;
                    nchan_redis_pass bench_redis;
                }
                location = /healthz { return 200 "ok"; }
            }
        }

        """
    }
}
