// RFC 4648 base64 (common/base64.h): what data: URLs carry.
#include <gtest/gtest.h>

#include "common/base64.h"

TEST(Base64, RoundTripsEveryLengthAndRejectsWhatIsNotBase64) {
  std::vector<uint8_t> bytes;
  for (int n = 0; n < 40; ++n) {
    const std::string text = clipcap::base64_encode(bytes);
    EXPECT_EQ(text.size() % 4, 0u);
    auto back = clipcap::base64_decode(text);
    ASSERT_TRUE(back.has_value()) << n;
    EXPECT_EQ(*back, bytes) << n;
    bytes.push_back(static_cast<uint8_t>(n * 37 + 11));
  }
  EXPECT_EQ(clipcap::base64_encode({'M', 'a', 'n'}), "TWFu");
  EXPECT_EQ(clipcap::base64_encode({'M', 'a'}), "TWE=");
  EXPECT_EQ(*clipcap::base64_decode("TW\nE="), (std::vector<uint8_t>{'M', 'a'}));  // line breaks are skipped
  for (const char* bad : {"TWE", "TW=u", "T@Fu", "TWFu=", "TWE==="}) EXPECT_FALSE(clipcap::base64_decode(bad)) << bad;
}
