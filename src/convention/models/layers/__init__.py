"""Building blocks of ConvEntion: band embedding, positional encodings, convolutional attention."""
