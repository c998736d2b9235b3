#ifndef ATROUS_CODECS_H
#define ATROUS_CODECS_H

// One entry point per whole decode or encode. Every setjmp/longjmp of libpng
// and libjpeg stays inside these functions: they always return normally with
// a status and, on failure, the library's own message.

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  ATR_OK = 0,
  /// The library rejected the data; `message` holds its reason.
  ATR_ERR_FORMAT = 1,
  /// The declared size exceeds the caller's pixel limit (nothing allocated).
  ATR_ERR_TOO_LARGE = 2,
  /// An allocation failed.
  ATR_ERR_MEMORY = 3,
  /// Valid data that this build cannot decode (e.g. 12-bit JPEG).
  ATR_ERR_UNSUPPORTED = 4,
  /// The data ended before the image was complete.
  ATR_ERR_TRUNCATED = 5,
  /// The caller passed arguments the encoder cannot take.
  ATR_ERR_ARGUMENT = 6,
} atr_status;

#define ATR_MESSAGE_CAPACITY 256

/// What a decode found. Sizes in pixels; `channels` and `bit_depth` describe
/// the decoded pixels (after palette and low-bit-depth expansion).
typedef struct {
  uint32_t width;
  uint32_t height;
  /// 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
  uint32_t channels;
  /// 8 or 16.
  uint32_t bit_depth;

  /// PNG: IHDR bit depth. JPEG: data precision.
  uint32_t source_bit_depth;
  /// PNG: IHDR colour type. JPEG: J_COLOR_SPACE of the file.
  int32_t source_color_type;
  /// PNG: number of components as stored. JPEG: number of components.
  uint32_t source_components;
  /// PNG: Adam7. JPEG: progressive.
  uint32_t interlaced;
  /// PNG: tRNS present. Unused for JPEG.
  uint32_t has_transparency;
  /// JPEG: arithmetic coding. Unused for PNG.
  uint32_t arithmetic;
} atr_image_info;

typedef struct {
  atr_image_info info;
  /// Interleaved rows, no padding, 16-bit samples in host byte order.
  /// Allocated with posix_memalign(64); the caller releases it with free().
  void *pixels;
  size_t pixel_bytes;
  /// The TIFF payload of a JPEG's Exif APP1 segment (after "Exif\0\0"), or
  /// NULL. Allocated with malloc; the caller releases it with free().
  uint8_t *exif;
  size_t exif_bytes;
  /// NUL-terminated reason when the status is not ATR_OK.
  char message[ATR_MESSAGE_CAPACITY];
} atr_decode_result;

typedef struct {
  /// The encoded file. Allocated with malloc; the caller releases it with free().
  uint8_t *data;
  size_t size;
  char message[ATR_MESSAGE_CAPACITY];
} atr_encode_result;

/// Decodes a whole PNG held in memory. With `header_only` set, fills `info`
/// and allocates nothing. Images whose declared width*height exceeds
/// `max_pixels` fail with ATR_ERR_TOO_LARGE before any pixel is allocated.
atr_status atr_png_decode(const uint8_t *data, size_t size, uint64_t max_pixels,
                          int header_only, atr_decode_result *result);

/// Encodes interleaved pixels (1-4 channels, 8 or 16 bits, 16-bit samples in
/// host byte order) as PNG. `level` is the zlib level, 0-9.
atr_status atr_png_encode(const void *pixels, uint32_t width, uint32_t height,
                          uint32_t channels, uint32_t bit_depth, int level,
                          atr_encode_result *result);

/// Decodes a whole JPEG held in memory to gray (1 channel) or RGB (3);
/// CMYK and YCCK files are converted to RGB. Data that ends early is an error.
atr_status atr_jpeg_decode(const uint8_t *data, size_t size, uint64_t max_pixels,
                           int header_only, atr_decode_result *result);

/// Encodes 8-bit gray (1 channel) or RGB (3) as baseline JPEG with 4:2:0
/// chroma subsampling. `quality` is 1-100.
atr_status atr_jpeg_encode(const uint8_t *pixels, uint32_t width, uint32_t height,
                           uint32_t channels, int quality, atr_encode_result *result);

/// Inflates raw deflate data (no zlib or gzip header, as ZIP entries hold
/// it) into exactly `out_size` bytes.
atr_status atr_inflate_raw(const uint8_t *data, size_t size, uint8_t *out, size_t out_size,
                           char message[ATR_MESSAGE_CAPACITY]);

#ifdef __cplusplus
}
#endif

#endif
