// PNG readers and writers over libpng. libpng reports fatal errors by
// calling our error function, which records the message and longjmps back
// to the setjmp of the entry point that called into libpng; nothing else in
// the project sees a jump.

#include "codec_internal.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

typedef struct {
  atr_reader base;  // first: the public part
  png_structp png;
  png_infop info;
  FILE *file;
  /// An interlaced image, decoded whole on the first read: (H, W * C) bytes.
  uint8_t *whole;
  /// Row pointers for a whole-image read; freed here if libpng jumps.
  png_bytep *pointers;
  /// The failure a jump reports; the reader sets TRUNCATED before one.
  atr_status failure;
} png_reader;

typedef struct {
  atr_writer base;
  png_structp png;
  png_infop info;
} png_writer;

// The error pointer of both structs is the object's message buffer, which
// comes right after its status, so one handler serves reader and writer.
static void on_png_error(png_structp png, png_const_charp text) {
  char *message = (char *)png_get_error_ptr(png);
  // A message set by the reader (truncation) is more precise than libpng's
  // follow-up text; keep the first one.
  if (message != NULL && message[0] == '\0') snprintf(message, ATR_MESSAGE_CAPACITY, "%s", text);
  png_longjmp(png, 1);
}

// Warnings (bad ancillary CRCs, unknown chunks) are not failures: libpng
// already discards what it cannot use, as OpenCV and PIL do. Stay silent
// rather than print to the caller's stderr.
static void on_png_warning(png_structp png, png_const_charp text) {
  (void)png;
  (void)text;
}

static void read_from_file(png_structp png, png_bytep out, size_t count) {
  png_reader *reader = (png_reader *)png_get_io_ptr(png);
  if (fread(out, 1, count, reader->file) != count) {
    reader->failure = ATR_ERR_TRUNCATED;
    snprintf(reader->base.message, ATR_MESSAGE_CAPACITY, "unexpected end of file");
    png_error(png, "unexpected end of file");
  }
}

static int host_is_little_endian(void) {
  const uint16_t probe = 1;
  return *(const uint8_t *)&probe == 1;
}

/// The jump point of every entry that calls libpng: a jump back fails the reader.
#define PNG_CATCH(r)                                                                     \
  if (setjmp(png_jmpbuf((r)->png))) {                                                    \
    free((r)->pointers);                                                                 \
    (r)->pointers = NULL;                                                                \
    return atr_fail(&(r)->base.status, (r)->base.message, (r)->failure, "invalid PNG data"); \
  }

static atr_status read_png_rows(atr_reader *base, uint8_t *rows, uint32_t count) {
  png_reader *r = (png_reader *)base;
  PNG_CATCH(r);
  uint32_t height = base->info.height;
  size_t row_bytes = base->row_bytes;
  if (!base->info.interlaced) {
    for (uint32_t i = 0; i < count; i++) png_read_row(r->png, rows + (size_t)i * row_bytes, NULL);
    return ATR_OK;
  }
  // Adam7 spreads every row over seven passes: the whole image is needed.
  uint8_t *target = rows;
  if (!(base->next_row == 0 && count == height)) {
    if (r->whole == NULL) {
      void *allocation = NULL;
      if (posix_memalign(&allocation, 64, row_bytes * height) != 0) {
        r->failure = ATR_ERR_MEMORY;
        png_error(r->png, "out of memory for an interlaced image");
      }
      r->whole = (uint8_t *)allocation;
      target = r->whole;
    } else {
      target = NULL;
    }
  }
  if (target != NULL) {
    r->pointers = (png_bytep *)malloc(sizeof(png_bytep) * height);
    if (r->pointers == NULL) {
      r->failure = ATR_ERR_MEMORY;
      png_error(r->png, "out of memory for the row table");
    }
    for (uint32_t y = 0; y < height; y++) r->pointers[y] = target + (size_t)y * row_bytes;
    png_read_image(r->png, r->pointers);
    free(r->pointers);
    r->pointers = NULL;
  }
  if (r->whole != NULL) memcpy(rows, r->whole + (size_t)base->next_row * row_bytes, (size_t)count * row_bytes);
  return ATR_OK;
}

static atr_status finish_png_read(atr_reader *base) {
  png_reader *r = (png_reader *)base;
  PNG_CATCH(r);
  png_read_end(r->png, NULL);
  return ATR_OK;
}

static void png_reader_destroy(atr_reader *base) {
  png_reader *r = (png_reader *)base;
  if (r->png != NULL) png_destroy_read_struct(&r->png, r->info ? &r->info : NULL, NULL);
  free(r->whole);
  free(r->pointers);
}

/// libpng sets aside a chunk's declared length before it reads the data
/// (eXIf even past png_set_chunk_malloc_max), so a 62-byte file declaring
/// a 1.9 GB chunk was allocated: every chunk must fit in the file first.
/// Leaves the file after the signature.
static atr_status check_chunks(png_reader *r, uint64_t *file_size) {
  FILE *file = r->file;
  if (fseeko(file, 0, SEEK_END) != 0) {
    return atr_fail(&r->base.status, r->base.message, ATR_ERR_ARGUMENT, "the input cannot be read twice (not seekable)");
  }
  uint64_t size = (uint64_t)ftello(file);
  *file_size = size;
  for (uint64_t at = 8; at + 8 <= size;) {
    uint8_t header[8];
    if (fseeko(file, (off_t)at, SEEK_SET) != 0 || fread(header, 1, 8, file) != 8) break;
    uint32_t length = ((uint32_t)header[0] << 24) | ((uint32_t)header[1] << 16) | ((uint32_t)header[2] << 8) | header[3];
    if ((uint64_t)length + 12 > size - at) {
      char text[ATR_MESSAGE_CAPACITY];
      snprintf(text, sizeof text, "a chunk declares %u bytes but the file ends first", length);
      return atr_fail(&r->base.status, r->base.message, ATR_ERR_TRUNCATED, text);
    }
    if (memcmp(header + 4, "IEND", 4) == 0) break;
    at += (uint64_t)length + 12;
  }
  fseeko(file, 8, SEEK_SET);
  return ATR_OK;
}

atr_reader *atr_png_reader_open(FILE *file, uint64_t max_pixels) {
  png_reader *r = (png_reader *)calloc(1, sizeof(png_reader));
  if (r == NULL) return NULL;
  r->base.read_rows = read_png_rows;
  r->base.finish = finish_png_read;
  r->base.destroy = png_reader_destroy;
  r->file = file;
  r->failure = ATR_ERR_FORMAT;

  uint8_t signature[8];
  if (fread(signature, 1, 8, file) != 8 || png_sig_cmp(signature, 0, 8) != 0) {
    atr_fail(&r->base.status, r->base.message, ATR_ERR_FORMAT, "not a PNG file (bad signature)");
    return &r->base;
  }
  uint64_t file_size = 0;
  if (check_chunks(r, &file_size) != ATR_OK) return &r->base;

  r->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, r->base.message, on_png_error, on_png_warning);
  if (r->png != NULL) r->info = png_create_info_struct(r->png);
  if (r->png == NULL || r->info == NULL) {
    atr_fail(&r->base.status, r->base.message, ATR_ERR_MEMORY, "out of memory");
    return &r->base;
  }
  if (setjmp(png_jmpbuf(r->png))) {
    atr_fail(&r->base.status, r->base.message, r->failure, "invalid PNG data");
    return &r->base;
  }
  // Our own pixel limit replaces libpng's 1,000,000-pixel-per-side default.
  png_set_user_limits(r->png, 0x7fffffff, 0x7fffffff);
  // Compressed chunks (iCCP, zTXt) may inflate past the file's size: up
  // to 16 MB here, ahead of any real profile or text.
  png_set_chunk_malloc_max(r->png, file_size > (16u << 20) ? (size_t)file_size : (16u << 20));
  png_set_read_fn(r->png, r, read_from_file);
  png_set_sig_bytes(r->png, 8);
  png_read_info(r->png, r->info);

  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
  png_get_IHDR(r->png, r->info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
  int has_trns = png_get_valid(r->png, r->info, PNG_INFO_tRNS) != 0;
  atr_image_info *info = &r->base.info;
  info->width = width;
  info->height = height;
  info->source_bit_depth = (uint32_t)bit_depth;
  info->source_color_type = color_type;
  info->source_components = png_get_channels(r->png, r->info);
  info->interlaced = interlace != PNG_INTERLACE_NONE;
  info->has_transparency = (uint32_t)has_trns;
  if ((uint64_t)width * (uint64_t)height > max_pixels) {
    char text[ATR_MESSAGE_CAPACITY];
    snprintf(text, sizeof text, "declared size %ux%u (%llu pixels) exceeds the pixel limit of %llu",
             (unsigned)width, (unsigned)height, (unsigned long long)width * (unsigned long long)height,
             (unsigned long long)max_pixels);
    atr_fail(&r->base.status, r->base.message, ATR_ERR_TOO_LARGE, text);
    return &r->base;
  }

  // Expand to 8-bit gray, gray+alpha, RGB or RGBA (16 bits stay 16), the
  // way OpenCV's IMREAD_UNCHANGED and PIL's convert do.
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(r->png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(r->png);
  if (has_trns) png_set_tRNS_to_alpha(r->png);
  if (bit_depth == 16 && host_is_little_endian()) png_set_swap(r->png);
  png_set_interlace_handling(r->png);
  png_read_update_info(r->png, r->info);

  uint32_t channels = png_get_channels(r->png, r->info);
  uint32_t depth = (uint32_t)png_get_bit_depth(r->png, r->info);
  info->channels = channels;
  info->bit_depth = depth;
  r->base.row_bytes = (size_t)width * channels * (depth / 8);
  if (png_get_rowbytes(r->png, r->info) != r->base.row_bytes || channels < 1 || channels > 4 ||
      (depth != 8 && depth != 16)) {
    png_error(r->png, "unexpected pixel layout after expansion");
  }
  return &r->base;
}

#define PNG_WRITER_CATCH(w)                                                                    \
  if (setjmp(png_jmpbuf((w)->png))) {                                                          \
    return atr_fail(&(w)->base.status, (w)->base.message, ATR_ERR_FORMAT, "PNG encoding failed"); \
  }

static atr_status write_png_rows(atr_writer *base, const uint8_t *rows, uint32_t count) {
  png_writer *w = (png_writer *)base;
  PNG_WRITER_CATCH(w);
  // libpng copies each row before transforming it (the byte swap), so the
  // caller's rows are only read.
  for (uint32_t i = 0; i < count; i++) png_write_row(w->png, (png_const_bytep)(rows + (size_t)i * base->row_bytes));
  return ATR_OK;
}

static atr_status finish_png_write(atr_writer *base) {
  png_writer *w = (png_writer *)base;
  PNG_WRITER_CATCH(w);
  png_write_end(w->png, NULL);
  return ATR_OK;
}

static void png_writer_destroy(atr_writer *base) {
  png_writer *w = (png_writer *)base;
  if (w->png != NULL) png_destroy_write_struct(&w->png, w->info ? &w->info : NULL);
}

atr_writer *atr_png_writer_open(FILE *file, uint32_t width, uint32_t height, uint32_t channels,
                                uint32_t bit_depth, int level) {
  png_writer *w = (png_writer *)calloc(1, sizeof(png_writer));
  if (w == NULL) return NULL;
  w->base.write_rows = write_png_rows;
  w->base.finish = finish_png_write;
  w->base.destroy = png_writer_destroy;
  w->base.width = width;
  w->base.height = height;
  w->base.channels = channels;
  if (width == 0 || height == 0 || width > 0x7fffffff || height > 0x7fffffff || channels < 1 || channels > 4 ||
      (bit_depth != 8 && bit_depth != 16) || level < 0 || level > 9) {
    atr_fail(&w->base.status, w->base.message, ATR_ERR_ARGUMENT, "invalid image layout or compression level for PNG");
    return &w->base;
  }
  w->base.row_bytes = (size_t)width * channels * (bit_depth / 8);
  static const int color_types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                     PNG_COLOR_TYPE_RGB_ALPHA};
  w->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, w->base.message, on_png_error, on_png_warning);
  if (w->png != NULL) w->info = png_create_info_struct(w->png);
  if (w->png == NULL || w->info == NULL) {
    atr_fail(&w->base.status, w->base.message, ATR_ERR_MEMORY, "out of memory");
    return &w->base;
  }
  if (setjmp(png_jmpbuf(w->png))) {
    atr_fail(&w->base.status, w->base.message, ATR_ERR_FORMAT, "PNG encoding failed");
    return &w->base;
  }
  png_set_user_limits(w->png, 0x7fffffff, 0x7fffffff);
  // png_init_io's writes fail through png_error on a short write (disk full).
  png_init_io(w->png, file);
  png_set_compression_level(w->png, level);
  // 64 KB IDAT chunks instead of 8 KB: fewer chunks for a reader to check.
  png_set_compression_buffer_size(w->png, 1 << 16);
  png_set_IHDR(w->png, w->info, width, height, (int)bit_depth, color_types[channels], PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(w->png, w->info);
  if (bit_depth == 16 && host_is_little_endian()) png_set_swap(w->png);
  return &w->base;
}
