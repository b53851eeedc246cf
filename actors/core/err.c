/* Error names and texts, from the one table in <tether/err.h>. */
#include <tether/err.h>

const char *tt_strerror(int err) {
    switch (err) {
#define TT_ERR_TEXT_(name, value, text) case value: return text;
        TT_ERR_TABLE(TT_ERR_TEXT_)
#undef TT_ERR_TEXT_
    default: return "unknown error";
    }
}

const char *tt_err_name(int err) {
    switch (err) {
#define TT_ERR_NAME_(name, value, text) case value: return #name;
        TT_ERR_TABLE(TT_ERR_NAME_)
#undef TT_ERR_NAME_
    default: return "TT_E?";
    }
}
