// The parts of remote access that need no server: URLs, credentials and
// settings from the environment, the cache's layout and eviction. Requests
// against real servers (versitygw, nginx, a fault proxy) are in
// tests/test_remote.py.
#include <sys/stat.h>
#include <utime.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "remote/cache.h"
#include "remote/client.h"
#include "base/file.h"
#include "shardset/remote.h"
#include "testing/test_util.h"

namespace shardset::remote {
namespace {

// Sets environment variables for one test and puts them back after it.
class ScopedEnv {
 public:
  void Set(const char* name, const std::string& value) {
    Save(name);
    ::setenv(name, value.c_str(), 1);
  }
  void Unset(const char* name) {
    Save(name);
    ::unsetenv(name);
  }
  ~ScopedEnv() {
    for (auto& [name, old] : saved_) {
      if (old.first) {
        ::setenv(name.c_str(), old.second.c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }

 private:
  void Save(const char* name) {
    if (saved_.count(name)) return;
    const char* v = std::getenv(name);
    saved_[name] = {v != nullptr, v ? v : ""};
  }
  std::map<std::string, std::pair<bool, std::string>> saved_;
};

TEST(RemoteUrl, KindsJoinAndNames) {
  EXPECT_TRUE(IsRemote("s3://b/k"));
  EXPECT_TRUE(IsRemote("http://h/p"));
  EXPECT_TRUE(IsRemote("https://h/p"));
  EXPECT_FALSE(IsRemote("s3:/b"));
  EXPECT_FALSE(IsRemote("data/s3://x"));
  EXPECT_EQ(JoinUrl("s3://b/ds", "manifest.json"), "s3://b/ds/manifest.json");
  EXPECT_EQ(JoinUrl("s3://b/ds/", "x"), "s3://b/ds/x");
  EXPECT_EQ(UrlBaseName("s3://b/ds/shard-000000.shard"), "shard-000000.shard");
  EXPECT_EQ(UrlBaseName("http://h:80/a/b/"), "b");
  EXPECT_EQ(UrlBaseName("s3://bucket"), "");
}

using test::WriteBytes;

class RemoteEnvTest : public test::TempDirTest {};

TEST_F(RemoteEnvTest, CredentialsFromEnvironmentThenProfileFile) {
  ScopedEnv env;
  env.Set("AWS_ACCESS_KEY_ID", "AK");
  env.Set("AWS_SECRET_ACCESS_KEY", "SK");
  env.Set("AWS_SESSION_TOKEN", "TOK");
  Credentials c = CredentialsFromEnvironment();
  EXPECT_EQ(c.key, "AK");
  EXPECT_EQ(c.secret, "SK");
  EXPECT_EQ(c.token, "TOK");

  env.Unset("AWS_ACCESS_KEY_ID");
  env.Unset("AWS_SECRET_ACCESS_KEY");
  env.Unset("AWS_SESSION_TOKEN");
  WriteBytes(Path("credentials"),
             "# a comment\n[default]\naws_access_key_id = DK\naws_secret_access_key=DS\n\n"
             "[ other ]\r\naws_access_key_id = OK\r\naws_secret_access_key = OS\r\n"
             "aws_session_token = OT\r\n");
  env.Set("AWS_SHARED_CREDENTIALS_FILE", Path("credentials"));
  env.Unset("AWS_PROFILE");
  c = CredentialsFromEnvironment();
  EXPECT_EQ(c.key, "DK");
  EXPECT_EQ(c.secret, "DS");
  EXPECT_EQ(c.token, "");
  env.Set("AWS_PROFILE", "other");
  c = CredentialsFromEnvironment();
  EXPECT_EQ(c.key, "OK");
  EXPECT_EQ(c.secret, "OS");
  EXPECT_EQ(c.token, "OT");
  env.Set("AWS_PROFILE", "missing");
  EXPECT_EQ(CredentialsFromEnvironment().key, "");  // unsigned requests
}

TEST_F(RemoteEnvTest, SettingsFromFlagsThenEnvironmentThenDefaults) {
  ScopedEnv env;
  for (const char* v : {"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION",
                        "AWS_DEFAULT_REGION", "SHARDSET_CACHE_DIR", "XDG_CACHE_HOME",
                        "SHARDSET_CACHE_BYTES", "SHARDSET_RETRIES"}) {
    env.Unset(v);
  }
  env.Set("HOME", Path("home"));
  RemoteOptions o = Resolve({});
  EXPECT_EQ(o.endpoint, "");
  EXPECT_EQ(o.region, "us-east-1");
  EXPECT_EQ(o.cache_dir, Path("home") + "/.cache/shardset");
  EXPECT_EQ(o.cache_bytes, uint64_t{10} << 30);
  EXPECT_EQ(o.retries, 10);

  env.Set("AWS_ENDPOINT_URL", "http://127.0.0.1:9000/");
  env.Set("AWS_DEFAULT_REGION", "eu-west-3");
  env.Set("XDG_CACHE_HOME", Path("xdg"));
  env.Set("SHARDSET_CACHE_BYTES", "2GiB");
  env.Set("SHARDSET_RETRIES", "3");
  o = Resolve({});
  EXPECT_EQ(o.endpoint, "http://127.0.0.1:9000");
  EXPECT_EQ(o.region, "eu-west-3");
  EXPECT_EQ(o.cache_dir, Path("xdg") + "/shardset");
  EXPECT_EQ(o.cache_bytes, uint64_t{2} << 30);
  EXPECT_EQ(o.retries, 3);

  env.Set("AWS_ENDPOINT_URL_S3", "http://s3only:1");
  RemoteOptions flags;
  flags.region = "ap-south-1";
  flags.cache_dir = Path("flag-cache");
  o = Resolve(flags);
  EXPECT_EQ(o.endpoint, "http://s3only:1");
  EXPECT_EQ(o.region, "ap-south-1");
  EXPECT_EQ(o.cache_dir, Path("flag-cache"));
  flags.endpoint = "http://flag:2";
  EXPECT_EQ(Resolve(flags).endpoint, "http://flag:2");
}

TEST_F(RemoteEnvTest, CacheLayoutKeepsNamesAndSeparatesFolders) {
  RemoteOptions o;
  o.cache_dir = Path("cache");
  Client client(o);
  Cache cache(&client);
  const std::string a = cache.PathOf("s3://b/ds/shard-000000.shard");
  const std::string a_idx = cache.PathOf("s3://b/ds/shard-000000.shard.idx");
  const std::string b = cache.PathOf("s3://b/other/shard-000000.shard");
  const std::string h = cache.PathOf("http://h/ds/shard-000000.shard");
  EXPECT_EQ(BaseName(a), "shard-000000.shard");
  EXPECT_EQ(DirName(a), DirName(a_idx)) << "a sidecar sits beside its shard";
  EXPECT_NE(DirName(a), DirName(b));
  EXPECT_NE(DirName(a), DirName(h));
  EXPECT_EQ(a.rfind(Path("cache") + "/objects/", 0), 0u);
  EXPECT_EQ(a, cache.PathOf("s3://b/ds/shard-000000.shard"));
}

TEST_F(RemoteEnvTest, EvictionDropsLeastRecentlyUsedFirstAndSparesTheNewOne) {
  RemoteOptions o;
  o.cache_dir = Path("cache");
  o.cache_bytes = 2500;
  Client client(o);
  Cache cache(&client);
  const std::string folder = Path("cache/objects/00000000000000aa");
  std::filesystem::create_directories(folder);
  // Four 1,000-byte objects used at times 1..4, plus a lock file and a
  // temporary file, which are never counted or deleted.
  for (int i = 1; i <= 4; ++i) {
    const std::string p = folder + "/obj" + std::to_string(i);
    WriteBytes(p, std::string(1000, 'x'));
    struct utimbuf t{i * 1000, i * 1000};
    ASSERT_EQ(::utime(p.c_str(), &t), 0);
  }
  WriteBytes(folder + "/obj1.lock", "");
  WriteBytes(folder + "/.shardset-tmp.obj9.1.0", std::string(5000, 'y'));
  auto freed = cache.Evict(folder + "/obj1");  // obj1 was just fetched: kept
  ASSERT_TRUE(freed.ok()) << freed.status().ToString();
  EXPECT_EQ(*freed, 2000u);
  EXPECT_TRUE(PathExists(folder + "/obj1"));
  EXPECT_FALSE(PathExists(folder + "/obj2"));
  EXPECT_FALSE(PathExists(folder + "/obj3"));
  EXPECT_TRUE(PathExists(folder + "/obj4"));
  EXPECT_TRUE(PathExists(folder + "/obj1.lock"));
  EXPECT_TRUE(PathExists(folder + "/.shardset-tmp.obj9.1.0"));
}

TEST_F(RemoteEnvTest, NoServerIsAnIOErrorAfterTheRetries) {
  RemoteOptions o;
  o.cache_dir = Path("cache");
  o.retries = 2;
  Client client(o);
  auto got = client.Get("http://127.0.0.1:1/x", 100);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Status::Code::kIOError);
  EXPECT_NE(got.status().message().find("gave up after 2 attempts"), std::string::npos)
      << got.status().message();
  EXPECT_EQ(client.retried(), 1u);
  auto bad = client.Get("s3:///no-bucket", 100);
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace shardset::remote
