/*
 * An empty ICU common-data package, in place of ICU's 31 MB data archive (libicudata.a).
 *
 * ICU finds its data through one symbol, icudt<MAJOR>_dat (ICU_DATA_SYMBOL, set by
 * build.rs from the installed ICU's version). This one is a valid package header ("ToCP"
 * table of contents, format 1) listing no items, so every data lookup fails cleanly and ICU
 * keeps only what is built into its code: the algorithmic converters (UTF-8/16/32,
 * ISO-8859-1, US-ASCII). libxml2 decodes those encodings itself anyway; any other declared
 * encoding cannot be converted, and the SAML code refuses such a document.
 */
#include <stdint.h>

#ifndef ICU_DATA_SYMBOL
#error "ICU_DATA_SYMBOL must name the ICU data entry point (icudt<MAJOR>_dat)"
#endif

struct icu_data_info { /* ICU's UDataInfo: 20 bytes */
    uint16_t size;
    uint16_t reserved_word;
    uint8_t is_big_endian;
    uint8_t charset_family; /* 0: ASCII family */
    uint8_t sizeof_uchar;
    uint8_t reserved_byte;
    uint8_t data_format[4];
    uint8_t format_version[4];
    uint8_t data_version[4];
};

struct icu_empty_package {
    uint16_t header_size; /* bytes before the table of contents */
    uint8_t magic1;
    uint8_t magic2;
    struct icu_data_info info;
    uint8_t padding[8];
    uint32_t count; /* entries in the table of contents: none */
    uint32_t reserved;
    uint32_t toc[2];
};

_Static_assert(sizeof(struct icu_data_info) == 20, "UDataInfo is 20 bytes");
_Static_assert(__builtin_offsetof(struct icu_empty_package, count) == 32,
               "the table of contents follows a 32-byte header");

const struct icu_empty_package ICU_DATA_SYMBOL = {
    .header_size = 32,
    .magic1 = 0xda,
    .magic2 = 0x27,
    .info =
        {
            .size = sizeof(struct icu_data_info),
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            .is_big_endian = 1,
#else
            .is_big_endian = 0,
#endif
            .charset_family = 0,
            .sizeof_uchar = 2,
            .data_format = {'T', 'o', 'C', 'P'},
            .format_version = {1, 0, 0, 0},
        },
    .count = 0,
};
